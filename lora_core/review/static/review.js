// lorakit review: the page. Plain JavaScript, no build step. Every change goes through the JSON API
// (POST, same origin, the token in an HttpOnly cookie); the server re-lints and answers with the
// records whose findings changed. Captions are shown with textContent only, never as markup.
"use strict";

const state = { records: [], datasetFindings: [], rules: {}, shown: [], selected: null, unsaved: [],
  journal: { undo: 0, redo: 0 }, changedOnDisk: [], preview: null, currentFinding: 0 };
const $ = (id) => document.getElementById(id);
const CARD_W = 230, CARD_H = 300;

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function banner(message, kind) {
  const el = $("banner");
  el.hidden = !message;
  el.textContent = message || "";
  el.className = "banner" + (kind ? " " + kind : "");
}

// -- the state -------------------------------------------------------------------------------

function takeState(data) {
  state.records = data.records;
  state.datasetFindings = data.dataset_findings;
  state.rules = data.rules;
  state.generation = data.dataset.generation;  // the records' numbering: thumbnails are cached per reading
  $("dataset-name").textContent = data.dataset.path;
  fillSelect($("filter-rule"), Object.keys(state.rules).sort());
  fillSelect($("filter-concept"), [...new Set(state.records.map((r) => r.concept).filter(Boolean))].sort());
  takeStatus(data);
  $("settings").textContent = data.settings || "";
  $("caption-one").hidden = !data.captioner;
  $("caption-one").textContent = data.captioner ? `Caption with ${data.captioner}` : "";
  renderTags();
  renderCharts();
  applyFilters();
  if (state.selected !== null && state.selected < state.records.length) openDetail(state.selected, true);
}

function takeChanges(data) {
  for (const record of data.records) state.records[record.i] = record;
  state.datasetFindings = data.dataset_findings;
  takeStatus(data);
  applyFilters(true);
  if (state.selected !== null) renderFindings();
}

function takeStatus(data) {
  state.unsaved = data.unsaved;
  state.journal = data.journal;
  state.changedOnDisk = data.changed_on_disk;
  const unsaved = state.unsaved.length;
  $("unsaved-note").hidden = unsaved === 0;
  $("unsaved-note").textContent = `${unsaved} unsaved`;
  $("save").disabled = unsaved === 0;
  $("revert-all").disabled = unsaved === 0;
  $("undo").disabled = state.journal.undo === 0 || unsaved > 0;
  $("redo").disabled = state.journal.redo === 0 || unsaved > 0;
  $("undo").title = state.journal.next_undo ? `Undo: ${state.journal.next_undo}` : "Nothing to undo";
  if (state.changedOnDisk.length) {
    banner(`Changed on disk by another program: ${state.changedOnDisk.join(", ")}. lorakit will not overwrite it; ` +
      "Reload to see it.", "error");
  }
  const counts = { error: 0, warning: 0, info: 0 };
  for (const r of state.records) for (const f of r.findings) counts[f.severity]++;
  for (const f of state.datasetFindings) counts[f.severity]++;
  $("counts").textContent = `${state.records.length} captions · ${counts.error} errors, ${counts.warning} warnings, ` +
    `${counts.info} info`;
  renderDatasetFindings();
}

function fillSelect(select, values) {
  const chosen = select.value;
  select.length = 1;
  for (const value of values) select.add(new Option(value, value));
  select.value = values.includes(chosen) ? chosen : "";
}

// -- filters and the grid ---------------------------------------------------------------------

function applyFilters(keepScroll) {
  const rule = $("filter-rule").value, severity = $("filter-severity").value, concept = $("filter-concept").value;
  const text = $("filter-text").value.toLowerCase(), uncaptioned = $("filter-uncaptioned").checked;
  const withFindings = $("filter-findings").checked;
  state.shown = state.records.filter((r) =>
    (!rule || r.findings.some((f) => f.code === rule)) &&
    (!severity || r.findings.some((f) => f.severity === severity)) &&
    (!concept || r.concept === concept) &&
    (!uncaptioned || !r.caption) &&
    (!withFindings || r.findings.length > 0) &&
    (!text || (r.caption || "").toLowerCase().includes(text) || (r.image || "").toLowerCase().includes(text)));
  const loose = state.datasetFindings.filter((f) => !rule || f.code === rule).length;
  $("shown").textContent = `${state.shown.length} of ${state.records.length} shown` +
    (state.datasetFindings.length ? `, ${loose} of ${state.datasetFindings.length} about the whole dataset` : "");
  document.body.dataset.shown = String(state.shown.length);
  if (!keepScroll) $("grid-wrap").scrollTop = 0;
  renderGrid(true);
}

let rendered = new Map();
function renderGrid(force) {
  // Only the cards in view exist (10,000 images scroll as fast as 10).
  const wrap = $("grid-wrap"), grid = $("grid");
  const columns = Math.max(1, Math.floor((wrap.clientWidth - 10) / CARD_W));
  const rows = Math.ceil(state.shown.length / columns);
  grid.style.height = `${rows * CARD_H + 10}px`;
  const first = Math.max(0, Math.floor(wrap.scrollTop / CARD_H) - 1) * columns;
  const last = Math.min(state.shown.length, first + (Math.ceil(wrap.clientHeight / CARD_H) + 3) * columns);
  const wanted = new Map();
  for (let at = first; at < last; at++) wanted.set(state.shown[at].i, at);
  for (const [i, el] of rendered) if (!wanted.has(i) || force) { el.remove(); rendered.delete(i); }
  for (const [i, at] of wanted) {
    if (rendered.has(i)) continue;
    const el = card(state.records[i]);
    el.style.left = `${(at % columns) * CARD_W + 5}px`;
    el.style.top = `${Math.floor(at / columns) * CARD_H + 5}px`;
    grid.appendChild(el);
    rendered.set(i, el);
  }
}

function card(record) {
  const el = document.createElement("div");
  el.className = "card" + (record.i === state.selected ? " selected" : "");
  el.dataset.i = record.i;
  const img = document.createElement("img");
  img.loading = "lazy";
  img.alt = record.image || "";
  img.src = `/thumb/${record.i}?g=${state.generation}`;
  const name = document.createElement("div");
  name.className = "name";
  name.textContent = record.image || "";
  const cap = document.createElement("div");
  cap.className = "cap" + (record.caption ? "" : " none");
  cap.textContent = record.caption || "no caption";
  const badges = document.createElement("div");
  badges.className = "badges";
  for (const code of [...new Set(record.findings.map((f) => f.code))]) {
    const finding = record.findings.find((f) => f.code === code);
    const b = document.createElement("span");
    b.className = `badge ${finding.severity}`;
    b.textContent = code;
    b.title = finding.message;
    badges.appendChild(b);
  }
  el.append(img, name, cap, badges);
  if (record.unsaved) {
    const dirty = document.createElement("span");
    dirty.className = "dirty";
    dirty.textContent = "●";
    dirty.title = "unsaved";
    el.appendChild(dirty);
  }
  el.addEventListener("click", () => openDetail(record.i));
  return el;
}

function renderDatasetFindings() {
  const list = $("dataset-findings");
  list.replaceChildren();
  for (const f of state.datasetFindings) {
    const li = document.createElement("li");
    li.className = f.severity;
    li.dataset.rule = f.code;
    li.textContent = `${f.code} ${f.message}`;
    list.appendChild(li);
  }
}

function renderTags() {
  const counts = new Map();
  for (const r of state.records) for (const tag of (r.caption || "").split(",")) {
    const t = tag.trim();
    if (t && t.length <= 40) counts.set(t, (counts.get(t) || 0) + 1);
  }
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  $("tags").replaceChildren(...top.slice(0, 25).map(([tag, n]) => {
    const li = document.createElement("li");
    li.textContent = `${tag} (${n})`;
    return li;
  }));
  state.vocabulary = top.map(([tag]) => tag);
  renderConcepts();
}

function renderConcepts() {
  // images x repeats per concept folder: what each concept weighs in an epoch
  const per = new Map();
  for (const r of state.records) {
    const key = r.concept || "(no concept folder)";
    const entry = per.get(key) || { images: 0, steps: 0 };
    entry.images++;
    entry.steps += r.repeats || 1;
    per.set(key, entry);
  }
  const total = [...per.values()].reduce((sum, e) => sum + e.steps, 0) || 1;
  $("concepts").replaceChildren(...[...per.entries()].sort((a, b) => b[1].steps - a[1].steps).map(([name, e]) => {
    const row = document.createElement("tr");
    for (const [text, cls] of [[name, ""], [`${e.images} img`, "n"], [`${e.steps} steps`, "n"],
      [`${Math.round(100 * e.steps / total)}%`, "n"]]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      if (cls) cell.className = cls;
      row.appendChild(cell);
    }
    return row;
  }));
}

// tag autocomplete from the set's own tags: the tag being typed (after the last comma before the cursor)
function currentToken() {
  const box = $("caption");
  const before = box.value.slice(0, box.selectionStart);
  const start = before.lastIndexOf(",") + 1;
  const token = before.slice(start).trimStart();
  return { token, from: box.selectionStart - token.length, to: box.selectionStart };
}

function suggest() {
  const { token } = currentToken();
  const list = $("suggestions");
  list.replaceChildren();
  if (token.length < 2) return;
  const lower = token.toLowerCase();
  for (const tag of (state.vocabulary || []).filter((t) => t.toLowerCase().startsWith(lower) && t !== token)
    .slice(0, 8)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = tag;
    button.addEventListener("click", () => takeSuggestion(tag));
    list.appendChild(button);
  }
}

function takeSuggestion(tag) {
  const box = $("caption");
  const { from, to } = currentToken();
  box.value = box.value.slice(0, from) + tag + box.value.slice(to);
  box.selectionStart = box.selectionEnd = from + tag.length;
  box.focus();
  $("suggestions").replaceChildren();
  captionInput();
}

// -- the detail view: edit with a live re-lint -------------------------------------------------

function openDetail(i, keepText) {
  state.selected = i;
  const record = state.records[i];
  $("detail").hidden = false;
  $("detail-name").textContent = record.image || `record ${i}`;
  $("detail-image").src = `/image/${i}?g=${state.generation}`;
  if (!keepText || document.activeElement !== $("caption")) $("caption").value = record.caption || "";
  for (const el of document.querySelectorAll(".card.selected")) el.classList.remove("selected");
  const el = rendered.get(i);
  if (el) el.classList.add("selected");
  state.currentFinding = 0;
  renderFindings();
  api(`/api/detail/${i}`).then(renderDetail).catch(() => {});
}

function renderDetail(detail) {
  if (!detail || detail.i !== state.selected) return;
  const facts = $("facts");
  facts.replaceChildren();
  const add = (text, over) => {
    const span = document.createElement("span");
    span.textContent = text;
    if (over) span.className = "over";
    facts.appendChild(span);
  };
  if (detail.tokens !== null) add(`${detail.tokens} / ${detail.budget} tokens (${detail.model})`, detail.tokens > detail.budget);
  if (detail.size) {
    const short = Math.min(...detail.size);
    add(`${detail.size[0]}x${detail.size[1]} px` + (detail.resolution ? ` for ${detail.resolution} px training` : ""),
      detail.resolution && short < detail.resolution);
  }
  const box = $("duplicate");
  box.hidden = detail.duplicate_of === null || detail.duplicate_of === undefined;
  box.replaceChildren();
  if (!box.hidden) {
    const other = state.records[detail.duplicate_of];
    const img = document.createElement("img");
    img.src = `/thumb/${detail.duplicate_of}?g=${state.generation}`;
    img.alt = other.image;
    const label = document.createElement("div");
    label.textContent = `the same picture as ${other.image} (open it)`;
    box.append(img, label);
    box.onclick = () => openDetail(detail.duplicate_of, false);
  }
}

function renderFindings() {
  const record = state.records[state.selected];
  if (!record) return;
  $("revert-one").disabled = !record.unsaved;
  const marked = $("caption-marked");
  marked.replaceChildren();
  const caption = record.caption || "";
  const spans = record.findings.filter((f) => f.span).map((f) => ({ start: f.span[0], end: f.span[1], f }))
    .sort((a, b) => a.start - b.start);
  let at = 0;
  for (const s of spans) {
    if (s.start < at) continue;
    marked.append(document.createTextNode(caption.slice(at, s.start)));
    const m = document.createElement("mark");
    m.className = s.f.severity;
    m.title = `${s.f.code} ${s.f.message}`;
    m.textContent = caption.slice(s.start, s.end) || "⎵";
    marked.append(m);
    at = s.end;
  }
  marked.append(document.createTextNode(caption.slice(at)));
  const list = $("findings");
  list.replaceChildren();
  record.findings.forEach((f, n) => {
    const li = document.createElement("li");
    li.className = f.severity + (n === state.currentFinding ? " current" : "");
    li.dataset.rule = f.code;
    const head = document.createElement("div");
    head.textContent = `${f.code} ${f.name}: ${f.message}`;
    li.appendChild(head);
    if (f.fix && f.fix.edits) {
      const button = document.createElement("button");
      button.className = "fix";
      button.textContent = `Fix (${f.fix.applicability}): ${f.fix.description}`;
      button.addEventListener("click", () => previewFix(record.i, f.id));
      li.appendChild(button);
    }
    const rule = state.rules[f.code];
    if (rule && rule.doc) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "why";
      details.append(summary, document.createTextNode(rule.doc));
      li.appendChild(details);
    }
    list.appendChild(li);
  });
}

let typing = null, inFlight = false, again = false;
function captionInput() {
  clearTimeout(typing);
  $("relint-state").textContent = "…";
  typing = setTimeout(sendEdit, 120);
}

async function sendEdit() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  const i = state.selected, caption = $("caption").value;
  try {
    const started = performance.now();
    const answer = await api("/api/edit", { i, caption });
    takeChanges(answer);
    renderDetail(answer.detail);
    $("relint-state").textContent = `re-linted in ${Math.round(performance.now() - started)} ms`;
  } catch (error) {
    banner(error.message, "error");
  } finally {
    inFlight = false;
    if (again) { again = false; sendEdit(); }
  }
}

// -- fixes, replace, previews -------------------------------------------------------------------

async function previewFix(i, id) {
  try {
    const answer = await api("/api/fix-preview", { i, id });
    showPreview(`Fix (${answer.applicability})`, answer.diff, async () => {
      $("caption").value = answer.after;
      takeChanges(await api("/api/edit", { i, caption: answer.after }));
      openDetail(i, false);
    });
  } catch (error) { banner(error.message, "error"); }
}

async function previewBulk(kind) {
  const indexes = state.shown.map((r) => r.i);
  let path, body;
  if (kind === "replace") {
    let find = $("find").value;
    const regex = find.length > 2 && find.startsWith("/") && find.endsWith("/");
    if (regex) find = find.slice(1, -1);
    path = "/api/replace";
    body = { find, replace: $("replace").value, regex, indexes };
  } else {
    path = "/api/fix-all";
    body = { unsafe: kind === "unsafe", indexes };
  }
  try {
    const answer = await api(path, { ...body, apply: false });
    const text = answer.changes.map((c) => `${state.records[c.i].image}\n${c.diff}`).join("\n") || "Nothing changes.";
    showPreview(`${answer.changes.length} caption(s) change (unsaved until you Save)`, text, answer.changes.length ?
      async () => takeChanges(await api(path, { ...body, apply: true })) : null);
  } catch (error) { banner(error.message, "error"); }
}

function showPreview(title, body, apply) {
  $("preview-title").textContent = title;
  $("preview-body").textContent = body;
  $("preview-apply").disabled = !apply;
  state.preview = apply;
  $("preview").showModal();
}

// -- saving, undo, redo ------------------------------------------------------------------------

async function run(path, message) {
  try {
    const data = await api(path, {});
    takeState(data);
    banner(message && data.written ? `${message}: ${data.written.length} file(s)` : "", "");
  } catch (error) { banner(error.message, "error"); }
}

function wire() {
  for (const id of ["filter-rule", "filter-severity", "filter-concept", "filter-uncaptioned", "filter-findings"]) {
    $(id).addEventListener("change", () => applyFilters());
  }
  $("filter-text").addEventListener("input", () => applyFilters());
  $("grid-wrap").addEventListener("scroll", () => renderGrid(false));
  // the detail view opening or closing narrows or widens the grid as much as a window resize does
  new ResizeObserver(() => renderGrid(true)).observe($("grid-wrap"));
  $("caption").addEventListener("input", () => { captionInput(); suggest(); });
  $("caption").addEventListener("keydown", (event) => {
    const first = $("suggestions").querySelector("button");
    if (event.key === "Tab" && first) { event.preventDefault(); takeSuggestion(first.textContent); }
  });
  $("close-detail").addEventListener("click", () => { $("detail").hidden = true; state.selected = null; });
  $("revert-one").addEventListener("click", async () => {
    takeChanges(await api("/api/revert", { i: state.selected }));
    openDetail(state.selected, false);
  });
  $("revert-all").addEventListener("click", async () => { takeChanges(await api("/api/revert", {}));
    if (state.selected !== null) openDetail(state.selected, false); });
  $("save").addEventListener("click", () => run("/api/save", "Saved"));
  $("undo").addEventListener("click", () => run("/api/undo", "Undone"));
  $("redo").addEventListener("click", () => run("/api/redo", "Redone"));
  $("reload").addEventListener("click", () => { banner(""); run("/api/reload"); });
  $("replace-preview").addEventListener("click", () => previewBulk("replace"));
  $("fix-safe-preview").addEventListener("click", () => previewBulk("safe"));
  $("fix-unsafe-preview").addEventListener("click", () => previewBulk("unsafe"));
  $("preview-cancel").addEventListener("click", () => $("preview").close());
  $("preview-apply").addEventListener("click", async () => {
    const apply = state.preview;
    $("preview").close();
    if (apply) { await apply(); if (state.selected !== null) openDetail(state.selected, false); }
  });
  $("refresh-charts").addEventListener("click", renderCharts);
  $("caption-one").addEventListener("click", async () => {
    const i = state.selected;
    $("relint-state").textContent = "captioning…";
    try {
      const answer = await api("/api/caption", { i });
      takeChanges(answer);
      if (state.selected === i) { $("caption").value = answer.caption; renderDetail(answer.detail); }
      $("relint-state").textContent = "captioned (unsaved)";
    } catch (error) { banner(error.message, "error"); $("relint-state").textContent = ""; }
  });
  $("drop-one").addEventListener("click", async () => {
    const record = state.records[state.selected];
    try {
      const body = { i: record.i, image: record.image };
      const plan = await api("/api/drop", { ...body, apply: false });
      const text = plan.moves.map(([from, to]) => `move ${from}\n  -> ${to}`).concat(
        plan.rewrites.map((r) => `${r.path} loses its row:\n${r.diff}`)).join("\n");
      showPreview(`Drop ${record.image} from the training set (Undo puts it back)`, text, async () => {
        const done = await api("/api/drop", { ...body, apply: true });
        $("detail").hidden = true;
        state.selected = null;
        takeState(done);
        banner(`Dropped ${done.image}: ${done.moves.length} file(s) moved into .lorakit_dropped/`, "");
      });
    } catch (error) { banner(error.message, "error"); }
  });
  $("pin").addEventListener("click", async () => {
    try {
      const answer = await api("/api/pin", { apply: false });
      showPreview(`Write ${answer.path}`, answer.text, async () => {
        const written = await api("/api/pin", { apply: true });
        takeState(written);
        banner(`Wrote ${written.path}: the rules now use its pinned values`, "");
      });
    } catch (error) { banner(error.message, "error"); }
  });
  document.addEventListener("keydown", keyboard);
}

function keyboard(event) {
  const editing = document.activeElement === $("caption") || document.activeElement.tagName === "INPUT";
  if ((event.ctrlKey || event.metaKey) && event.key === "s") { event.preventDefault(); $("save").click(); return; }
  if (editing) { if (event.key === "Escape") document.activeElement.blur(); return; }
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    (event.shiftKey ? $("redo") : $("undo")).click();
    return;
  }
  const at = state.shown.findIndex((r) => r.i === state.selected);
  if (event.key === "j" || event.key === "ArrowRight") select(at + 1);
  else if (event.key === "k" || event.key === "ArrowLeft") select(at - 1);
  else if (event.key === "n") nextFinding();
  else if (event.key === "e" && state.selected !== null) { event.preventDefault(); $("caption").focus(); }
  else if (event.key === "a" && state.selected !== null) {
    const f = state.records[state.selected].findings[state.currentFinding];
    if (f && f.fix && f.fix.edits) previewFix(state.selected, f.id);
  } else if (event.key === "Escape") $("close-detail").click();
}

function select(at) {
  if (!state.shown.length) return;
  const record = state.shown[Math.max(0, Math.min(state.shown.length - 1, at))];
  openDetail(record.i, false);
  const index = state.shown.indexOf(record);
  const columns = Math.max(1, Math.floor(($("grid-wrap").clientWidth - 10) / CARD_W));
  $("grid-wrap").scrollTop = Math.floor(index / columns) * CARD_H - CARD_H;
  renderGrid(false);
}

function nextFinding() {
  const record = state.records[state.selected];
  if (record && state.currentFinding + 1 < record.findings.length) {
    state.currentFinding++;
    renderFindings();
    return;
  }
  const at = state.shown.findIndex((r) => r.i === state.selected);
  const next = state.shown.slice(at + 1).find((r) => r.findings.length);
  if (next) select(state.shown.indexOf(next));
}

// lorakit stats' histograms as small bar charts (SVG built with DOM calls: no markup from data)
async function renderCharts() {
  let stats;
  try { stats = await api("/api/stats"); } catch (error) { return; }
  const charts = [];
  if (stats.length) charts.push([`Caption length (${stats.length.unit}); mean ${stats.length.mean}, max ${stats.length.max}`,
    stats.length.histogram, (edge) => stats.length.unit === "clip-tokens" && edge >= 75]);
  if (stats.images) charts.push([`Aspect ratio (width / height) of ${stats.images.count} images`,
    stats.images.aspect_histogram, () => false]);
  $("charts").replaceChildren(...charts.map(([title, histogram, over]) => barChart(title, histogram, over)));
  if (stats.trigger) {
    const p = document.createElement("p");
    p.textContent = `trigger ${stats.trigger.token}: ${Math.round(100 * stats.trigger.coverage)}% of captions`;
    $("charts").appendChild(p);
  }
}

function barChart(title, histogram, over) {
  const NS = "http://www.w3.org/2000/svg";
  const figure = document.createElement("figure");
  const svg = document.createElementNS(NS, "svg");
  const most = Math.max(1, ...histogram.counts);
  const width = 100 / histogram.counts.length;
  svg.setAttribute("viewBox", "0 0 100 60");
  svg.setAttribute("preserveAspectRatio", "none");
  histogram.counts.forEach((count, k) => {
    const bar = document.createElementNS(NS, "rect");
    const height = 56 * count / most;
    bar.setAttribute("x", String(k * width + 0.5));
    bar.setAttribute("y", String(58 - height));
    bar.setAttribute("width", String(width - 1));
    bar.setAttribute("height", String(height));
    if (over(histogram.edges[k])) bar.classList.add("over");
    const tip = document.createElementNS(NS, "title");
    tip.textContent = `${histogram.labels[k]}: ${count}`;
    bar.appendChild(tip);
    svg.appendChild(bar);
  });
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  figure.append(svg, caption);
  return figure;
}

async function start() {
  wire();
  try {
    takeState(await api("/api/state"));
  } catch (error) { banner(error.message, "error"); }
  document.body.dataset.ready = "1";
}

start();

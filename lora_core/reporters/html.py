"""`lorakit lint --format html -o report.html`: one self-contained page to look at a dataset.

Summary counts per rule and severity, a tag-frequency bar chart (inline SVG), and a card per
image: the thumbnail (embedded as a JPEG data URI for datasets up to EMBED_LIMIT images, else
linked relative to the working directory), the caption with each violation's span highlighted,
the violations, and the CLIP score when LK8xx ran. Filters by rule, severity and identity; arrow
keys / j k move between cards, Enter opens the image. `#rule=LK101&severity=error` in the URL
sets the filters. No network access: no external script, style or font.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from lora_core.reporters import Report
from lora_core.violations import Violation

EMBED_LIMIT = 1000
THUMBNAIL = 192


def _owned(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _thumbnail(path: str) -> str | None:
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as image:
            image.draft("RGB", (THUMBNAIL * 2, THUMBNAIL * 2))
            picture = ImageOps.exif_transpose(image).convert("RGB")
            picture.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            picture.save(buffer, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    except Exception:  # any unreadable image (LK601 says why): the card shows no picture
        return None


def _highlight(caption: str, violations: list[Violation]) -> str:
    """The caption as HTML with violation spans marked (overlaps: the first span wins)."""
    marks = sorted({(v.span[0], v.span[1], v.code) for v in violations if v.span and v.span[1] is not None})
    out, at = [], 0
    for start, end, code in marks:
        if start < at or end <= start:
            continue
        out.append(html.escape(caption[at:start]))
        out.append(f'<mark title="{code}">{html.escape(caption[start:end])}</mark>')
        at = end
    out.append(html.escape(caption[at:]))
    return "".join(out)


def _picture(path: str, root: str, embed: bool, cwd: Path) -> str | None:
    """A card's picture: an embedded thumbnail, or a path relative to the report for a big set.
    A report people share carries only pictures the dataset owns: never one that a symlink (or any
    path) leads out of the dataset folder to."""
    if not _owned(path, root):
        return None
    return _thumbnail(path) if embed else os.path.relpath(path, cwd)


def _finding(violation: Violation) -> dict[str, str]:
    return {"code": violation.code, "name": violation.name, "severity": violation.severity.value,
            "message": violation.message}


def _identities(report: Report) -> list[str]:
    names: list[str] = []
    for item in report.result.datasets:
        names += [n for n in item.config.section("entities").get("identities", []) or [] if n not in names]
    return names


def _cards(report: Report) -> list[dict[str, Any]]:
    by_record: dict[int, list[Violation]] = {}
    by_image: dict[str, list[Violation]] = {}  # violations about an image without its record
    for violation in report.result.violations:
        if violation.record is not None:
            by_record.setdefault(id(violation.record), []).append(violation)
        elif violation.image is not None:
            by_image.setdefault(violation.image, []).append(violation)
    identities = _identities(report)
    cards = []
    total = sum(len(item.dataset.records) for item in report.result.datasets)
    embed = total <= EMBED_LIMIT
    for item in report.result.datasets:
        root = os.path.realpath(item.dataset.root)
        for record in item.dataset.records:
            found = by_record.get(id(record), []) + by_image.get(record.image or "", [])
            caption = record.caption or ""
            source = _picture(record.image_path, root, embed, report.cwd) \
                if record.image_path and record.image_exists else None
            scores = [v.data.get("score") for v in found if v.data and v.data.get("score") is not None]
            cards.append({
                "image": record.image or "", "caption": caption, "html": _highlight(caption, found),
                "src": source,
                "violations": [_finding(v) for v in found],
                "identities": [n for n in identities if n in caption],
                "score": scores[0] if scores else None,
            })
        # Images with no record (LK002: no row, no sidecar) get a card of their own: an
        # uncaptioned picture is exactly what a reviewer needs to see.
        listed = {record.image for record in item.dataset.records}
        for image in sorted(name for name in item.dataset.images_on_disk if name not in listed and name in by_image):
            path = os.path.join(item.dataset.root, image)
            cards.append({
                "image": image, "caption": "", "html": '<span class="nocaption">no caption</span>',
                "src": _picture(path, root, embed, report.cwd) if os.path.isfile(path) else None,
                "violations": [_finding(v) for v in by_image[image]], "identities": [], "score": None,
            })
    return cards


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _dataset_findings(report: Report, cards: list[dict[str, Any]]) -> list[Violation]:
    """Findings about the set rather than one picture (LK304 balance, LK204 coverage, a trainer
    config's LK502): those no card shows, listed above the cards so the counts add up."""
    shown = {card["image"] for card in cards}
    return [v for v in report.result.violations if v.record is None and (v.image is None or v.image not in shown)]


def _message_html(message: str) -> str:
    """A finding's message, escaped, with its `code spans` shown as code (not as backticks)."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(message))


def _tag_chart(cards: list[dict[str, Any]], top: int = 20) -> str:
    tags = Counter(t.strip().casefold() for c in cards for t in c["caption"].split(",") if t.strip())
    common = tags.most_common(top)
    if not common:
        return '<svg id="tag-chart" role="img" aria-label="no tags" width="10" height="10"></svg>'
    peak = common[0][1]
    row = 22
    bars = []
    for i, (tag, count) in enumerate(common):
        width = 360 * count / peak
        y = i * row
        bars.append(f'<text x="0" y="{y + 15}" class="label">{html.escape(tag[:40])}</text>'
                    f'<rect class="bar" x="250" y="{y + 3}" width="{width:.1f}" height="{row - 6}"></rect>'
                    f'<text x="{256 + width:.1f}" y="{y + 15}">{count}</text>')
    return (f'<svg id="tag-chart" role="img" aria-label="tag frequency" width="680" height="{row * len(common)}">'
            + "".join(bars) + "</svg>")


def render_html(report: Report, stream: TextIO) -> None:
    result = report.result
    cards = _cards(report)
    by_rule = Counter((v.code, v.name, v.severity.value) for v in result.violations)
    by_severity = Counter(v.severity.value for v in result.violations)
    rules_rows = "".join(f'<tr><td><a href="#rule={code}">{code}</a></td><td>{html.escape(name)}</td>'
                         f'<td class="{sev}">{sev}</td><td>{count}</td></tr>'
                         for (code, name, sev), count in sorted(by_rule.items()))
    codes = sorted({code for code, _, _ in by_rule})
    identities = _identities(report)
    card_html = []
    for index, card in enumerate(cards):
        severities = sorted({v["severity"] for v in card["violations"]})
        picture = (f'<img src="{html.escape(card["src"])}" alt="{html.escape(card["image"])}" loading="lazy">'
                   if card["src"] else '<div class="noimg">no image</div>')
        items = "".join(f'<li class="{v["severity"]}"><b>{v["code"]}</b> {_message_html(v["message"])}</li>'
                        for v in card["violations"])
        score = f'<p class="score">CLIP score {card["score"]:.3f}</p>' if card["score"] is not None else ""
        rules = " ".join(sorted({v["code"] for v in card["violations"]}))
        card_html.append(
            f'<article class="card" tabindex="0" id="card-{index}" data-rules="{rules}" '
            f'data-severities="{" ".join(severities)}" data-identities="{html.escape(" ".join(card["identities"]))}">'
            f'{picture}<h3>{html.escape(card["image"])}</h3><p class="caption">{card["html"]}</p>{score}'
            f'<ul>{items}</ul></article>')

    overall = _dataset_findings(report, cards)
    overall_html = "".join(
        f'<li class="finding {v.severity.value}" data-rule="{v.code}" data-severity="{v.severity.value}">'
        f'<b>{v.code}</b> <span class="where">{html.escape(report.path_of(v))}</span> '
        f'{_message_html(v.message)}</li>' for v in overall)
    dataset_section = (f'<section id="dataset-findings"><h2>About the whole dataset ({len(overall)})</h2>'
                       f'<ul>{overall_html}</ul></section>' if overall else "")

    def options(values: list[str]) -> str:
        return "".join(f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values)

    page = TEMPLATE.format(
        title=html.escape(", ".join(str(item.dataset.path) for item in result.datasets) or "lorakit report"),
        images=len(cards), violations=len(result.violations),
        errors=by_severity.get("error", 0), warnings=by_severity.get("warning", 0), infos=by_severity.get("info", 0),
        rules_rows=rules_rows or '<tr><td colspan="4">All checks passed!</td></tr>', chart=_tag_chart(cards),
        rule_options=options(codes), identity_options=options(identities), cards="".join(card_html),
        data=json.dumps({"codes": codes}), dataset_findings=dataset_section,
    )
    stream.write(page)


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lorakit: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #222; }}
header {{ display: flex; gap: 2rem; align-items: baseline; flex-wrap: wrap; }}
.counts span {{ margin-right: 1rem; }} .error {{ color: #b00020; }} .warning {{ color: #8a5a00; }} .info {{ color: #205080; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
#filters {{ position: sticky; top: 0; background: #fff; padding: .5rem 0; border-bottom: 1px solid #ccc; z-index: 1; }}
#cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px; margin-top: 12px; }}
.card {{ border: 1px solid #ccc; border-radius: 6px; padding: 8px; outline: none; }}
.card:focus {{ box-shadow: 0 0 0 3px #3b82f6; }} .card.hidden, .finding.hidden {{ display: none; }}
#dataset-findings ul {{ padding-left: 1rem; }} #dataset-findings .where {{ color: #555; font-family: monospace; }}
.card img {{ max-width: 100%; display: block; margin: 0 auto; }} .noimg {{ height: 120px; background: #eee; }}
.card h3 {{ font-size: 13px; margin: 6px 0 2px; word-break: break-all; }}
.caption mark {{ background: #ffd54f; }} .nocaption {{ color: #b91c1c; font-style: italic; }}
.card code {{ background: #f3f4f6; padding: 0 2px; border-radius: 2px; }} .card ul {{ padding-left: 1rem; margin: 4px 0; font-size: 12px; }}
#tag-chart text {{ font-size: 12px; }} #tag-chart .bar {{ fill: #1f77b4; }}
</style></head>
<body>
<header><h1>lorakit report</h1><p>{title}</p></header>
<section id="summary"><p class="counts"><span>{images} images</span><span>{violations} problems</span>
<span class="error">{errors} errors</span><span class="warning">{warnings} warnings</span><span class="info">{infos} info</span></p>
<table id="rules"><thead><tr><th>rule</th><th>name</th><th>severity</th><th>count</th></tr></thead><tbody>{rules_rows}</tbody></table>
<h2>Tag frequency</h2>{chart}</section>
<nav id="filters" aria-label="filters">
<label>rule <select id="filter-rule"><option value="">all</option>{rule_options}</select></label>
<label>severity <select id="filter-severity"><option value="">all</option><option>error</option><option>warning</option><option>info</option><option value="none">no problems</option></select></label>
<label>identity <select id="filter-identity"><option value="">all</option>{identity_options}</select></label>
<span id="shown"></span> <small>keys: arrows or j/k move, Enter opens the image</small></nav>
{dataset_findings}<main id="cards">{cards}</main>
<script id="lorakit-data" type="application/json">{data}</script>
<script>
(function () {{
  const cards = Array.from(document.querySelectorAll('.card'));
  const rule = document.getElementById('filter-rule'), severity = document.getElementById('filter-severity'),
        identity = document.getElementById('filter-identity'), shown = document.getElementById('shown');
  const findings = Array.from(document.querySelectorAll('#dataset-findings .finding'));
  function apply() {{
    let count = 0, overall = 0;
    for (const item of findings) {{
      const ok = (!rule.value || item.dataset.rule === rule.value) &&
        (!severity.value || item.dataset.severity === severity.value) && !identity.value;
      item.classList.toggle('hidden', !ok);
      if (ok) overall++;
    }}
    for (const card of cards) {{
      const rules = card.dataset.rules.split(' ').filter(Boolean), sevs = card.dataset.severities.split(' ').filter(Boolean);
      const ok = (!rule.value || rules.includes(rule.value)) &&
        (!severity.value || (severity.value === 'none' ? sevs.length === 0 : sevs.includes(severity.value))) &&
        (!identity.value || card.dataset.identities.split(' ').includes(identity.value));
      card.classList.toggle('hidden', !ok);
      if (ok) count++;
    }}
    shown.textContent = count + ' of ' + cards.length + ' shown' +
      (findings.length ? ', ' + overall + ' of ' + findings.length + ' about the whole dataset' : '');
    document.body.dataset.shown = String(count);
    const params = new URLSearchParams();
    if (rule.value) params.set('rule', rule.value);
    if (severity.value) params.set('severity', severity.value);
    if (identity.value) params.set('identity', identity.value);
    history.replaceState(null, '', params.toString() ? '#' + params.toString() : location.pathname);
  }}
  function fromHash() {{
    const params = new URLSearchParams(location.hash.slice(1));
    rule.value = params.get('rule') || ''; severity.value = params.get('severity') || '';
    identity.value = params.get('identity') || '';
    apply();
  }}
  for (const select of [rule, severity, identity]) select.addEventListener('change', apply);
  window.addEventListener('hashchange', fromHash);
  document.addEventListener('keydown', function (event) {{
    if (event.target.tagName === 'SELECT') return;
    const visible = cards.filter(c => !c.classList.contains('hidden'));
    const at = visible.indexOf(document.activeElement);
    if (event.key === 'ArrowRight' || event.key === 'ArrowDown' || event.key === 'j') {{
      (visible[at + 1] || visible[0]).focus(); event.preventDefault();
    }} else if (event.key === 'ArrowLeft' || event.key === 'ArrowUp' || event.key === 'k') {{
      (visible[at - 1] || visible[visible.length - 1]).focus(); event.preventDefault();
    }} else if (event.key === 'Enter' && at >= 0) {{
      const img = visible[at].querySelector('img'); if (img) window.open(img.src, '_blank');
    }}
  }});
  fromHash();
  document.body.dataset.ready = '1';
}})();
</script>
</body></html>
"""

"""lorakit on datasets people published, side by side with caption-audit and lora-audit.

    python bench/bench_realworld.py [--mirror DIR] [--peers DIR] [--only NAME ...] [--show]

1. Rebuilds each public dataset below from a snapshot of its GitHub repository (a git mirror
   under --mirror, `<owner>+<name>/repo`, as the session tool `fetch` leaves them; `git clone
   --mirror` gives the same) into build/realworld/ (never committed: their captions stay theirs).
2. Lints each one as a new user would: zero-config (`lorakit lint DIR --format json`), then
   after `lorakit init DIR` wrote its lorakit.toml (on a second copy).
3. Runs the peers on the same folders (caption sidecars; a metadata.jsonl set gets a sidecar
   copy for them, as they read nothing else): caption-audit 1.3.0 and lora-audit 0.1.0, each in
   its own venv under --peers (`python -m venv DIR/ca && DIR/ca/bin/pip install caption-audit==1.3.0`,
   the same for `la` with lora-audit==0.1.0 pillow).
4. Scores every warning and error against our labels (bench/realworld/labels/*.json):
   - a row finding is right when its row is labelled a defect, wrong when the row is clean,
     not counted when the row is labelled debatable;
   - a set-level finding (no row) is right when the set's labels list a set-wide fact that the
     finding states (`set_facts`, with the codes that state it), else wrong;
   - recall: labelled defect rows with at least one warning or error;
   - clean rows flagged: clean rows with a warning or error, over all clean rows.

How the labels were made: every finding of every tool (lorakit before and after this work,
caption-audit, lora-audit) on these sets was read against the caption (and the image where the
finding is about pixels), and targeted searches over the captions looked for the failure
patterns of LoRA captions (cut-off sentences, repetitions, contradictions, notes, identity
blocks, over-long captions for a CLIP model). A row nobody flagged and no search found is
presumed clean; that makes recall an upper bound for every tool alike. Each label says why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "realworld"
LABELS = Path(__file__).resolve().parent / "realworld" / "labels"
DEFAULT_MIRROR = Path(os.environ.get("LORAKIT_MIRROR", "/work/.mirror"))
DEFAULT_PEERS = REPO / "build" / "peers"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class Source:
    """One public dataset: where it lies in which repository, at which commit."""

    name: str
    repo: str  # owner/name on GitHub
    commit: str
    paths: tuple[str, ...]  # folders of the repository that make the dataset (kept with their names)
    strip: str = ""  # a leading folder removed from the paths when extracted
    text_only: bool = False  # the snapshot holds no image pixels (Git LFS pointers): image rules off
    what: str = ""
    peer_trigger: str = ""  # caption-audit needs a trigger when it cannot infer one
    skip_codes: tuple[str, ...] = field(default=())


SOURCES: tuple[Source, ...] = (
    Source("style_mumuy", "conanak99/lora-datasets", "9a2d862", ("data/style_mumuy",), "data/style_mumuy/",
           what="ai-toolkit style set for Krea 2 (arch krea2), ~150-word VLM prose, `[trigger].` first",
           peer_trigger="[trigger]"),
    Source("style_kakao", "conanak99/lora-datasets", "9a2d862", ("data/style_kakao",), "data/style_kakao/",
           what="ai-toolkit style set for Krea 2, VLM prose", peer_trigger="[trigger]"),
    Source("person_miu_cos", "conanak99/lora-datasets", "9a2d862", ("data/person_miu_cos",), "data/person_miu_cos/",
           what="ai-toolkit person set for Krea 2, VLM prose, `[trigger]` mid-sentence", peer_trigger="[trigger]"),
    Source("person_hanaame", "conanak99/lora-datasets", "9a2d862", ("data/person_hanaame",), "data/person_hanaame/",
           what="ai-toolkit person set for Krea 2, VLM prose", peer_trigger="[trigger]"),
    Source("tk_girl", "shirayu/example_lora_training", "612d80c", ("img_train", "img_reg"),
           what="kohya SD 1.5 set: WD14 tags with trigger `tk` in `5_tk girl`, 44 uncaptioned class images in "
                "img_reg/1_girl", peer_trigger="tk"),
    Source("monkey_island", "andreasjansson/monkey-island-sd", "09f2a21", ("dataset",), "dataset/",
           what="1,262 BLIP captions in metadata.jsonl, 320x144 frames trained at --resolution=144",
           peer_trigger="a"),
    Source("anime_sdxl", "zyjOrz/Hand-drawn-Anime-Style-LoRA", "26679fb", ("dataset",), "dataset/",
           what="SDXL style set (train_text_to_image_lora_sdxl.py), GPT-style prose in metadata.jsonl",
           peer_trigger="anime-style"),
    Source("houses", "jcalz23/lora-stable-diffusion-houses", "4498098", ("data/imgs", "data/metadata.jsonl"),
           "data/", what="SD 1.5 houses: every image listed 4 times in metadata.jsonl with 4 GPT captions",
           peer_trigger="house"),
    Source("azuki", "wjkoh/azuki-nft", "09b49a7", ("train/metadata.jsonl",), "train/", text_only=True,
           what="10,000 templated comma-phrase captions in metadata.jsonl (images are LFS pointers: text only)",
           peer_trigger="human"),
)


def mirror_of(mirror: Path, repo: str) -> Path:
    return mirror / repo.replace("/", "+") / "repo"


def rebuild(source: Source, mirror: Path) -> Path:
    """Extract the dataset from the repository snapshot into build/realworld/<name>/."""
    git_dir = mirror_of(mirror, source.repo)
    if not git_dir.exists():
        raise SystemExit(f"{source.repo}: no snapshot at {git_dir} (fetch it, or git clone --mirror "
                         f"https://github.com/{source.repo} {git_dir})")
    # The dataset keeps its own folder name (lorakit reads names: a kohya `5_tk girl`, a style
    # named by its folder), under build/realworld/<name>/.
    own_name = (source.strip.rstrip("/").rsplit("/", 1)[-1] if source.strip else "") or source.name
    shutil.rmtree(BUILD / source.name, ignore_errors=True)
    target = BUILD / source.name / own_name
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(git_dir), "archive", "--format=tar", source.commit, *source.paths],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory() as scratch:
        tar_path = Path(scratch) / "a.tar"
        tar_path.write_bytes(archive)
        with tarfile.open(tar_path) as tar:
            tar.extractall(scratch, filter="data")
        for path in Path(scratch).rglob("*"):
            if path.is_file() and path.name != "a.tar":
                relative = path.relative_to(scratch).as_posix()
                if source.strip and relative.startswith(source.strip):
                    relative = relative[len(source.strip):]
                out = target / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), out)
    return target


def sidecar_copy(folder: Path) -> Path:
    """A metadata.jsonl set as image + .txt sidecars (what the peers read); images are hard links."""
    metadata = folder / "metadata.jsonl"
    if not metadata.exists():
        return folder
    out = folder.parent / f"{folder.name}-sidecars"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    seen: Counter[str] = Counter()
    for line in metadata.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        name = Path(row["file_name"]).name
        seen[name] += 1
        stem = Path(name).stem + (f"__{seen[name]}" if seen[name] > 1 else "")
        image = folder / row["file_name"]
        if image.exists():
            os.link(image, out / f"{stem}{Path(name).suffix}")
        (out / f"{stem}.txt").write_text(row["text"], encoding="utf-8")
    return out


# -- running the tools --------------------------------------------------------------------------


@dataclass
class Finding:
    tool: str
    code: str
    severity: str  # error / warning
    row: str | None  # dataset-relative image, None for a set-level finding
    message: str


def lorakit(folder: Path, source: Source, init: bool) -> list[Finding]:
    target = folder
    if init:
        target = folder.parent / f"{folder.name}-init"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(folder, target, copy_function=os.link)
        subprocess.run([sys.executable, "-m", "lora_core", "init", str(target)], check=True, capture_output=True)
    command = [sys.executable, "-m", "lora_core", "lint", str(target), "--format", "json"]
    if source.text_only:
        command += ["--ignore", "LK001,LK002,LK6"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"lorakit on {target}: exit {done.returncode}\n{done.stderr[-2000:]}")
    found = []
    for item in json.loads(done.stdout):
        row = _row_of(item, target)
        if item["severity"] not in ("error", "warning") and not (row is None and item["data"].get("set_wide")):
            continue  # infos are not scored, except a set-wide statement (for "set facts stated")
        found.append(Finding("lorakit", item["code"], item["severity"], row, item["message"]))
    return found


def _row_of(item: dict, root: Path) -> str | None:
    if item.get("image"):
        return str(item["image"])
    return None


def caption_audit(folder: Path, source: Source, peers: Path) -> list[Finding] | None:
    exe = peers / "ca" / "bin" / "caption-audit"
    if not exe.exists():
        return None
    sidecars = sidecar_copy(folder)
    command = [str(exe), str(sidecars), "--recursive", "--format", "json"]
    if source.peer_trigger:
        command += ["--trigger", source.peer_trigger]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 2 or not done.stdout.strip():
        return []
    data = json.loads(done.stdout)
    found: list[Finding] = []
    for row in data.get("df", {}).get("rows", []):
        if row.get("flagged") and row.get("severity") in ("CRITICAL", "WARNING"):
            found.append(Finding("caption-audit", "fused-term", row["severity"].lower(), None, row["term"]))
    pairing = data.get("pairing", {})
    for key, severity in (("images_without_caption", "error"), ("empty_captions", "error"),
                          ("encoding_problems", "error"), ("captions_without_image", "warning")):
        for name in pairing.get(key, []):
            name = name[0] if isinstance(name, list) and name else name
            if not isinstance(name, str):
                continue
            found.append(Finding("caption-audit", key, severity, _peer_row(name, sidecars, folder), key))
    for name in data.get("trigger", {}).get("missing_files", []):
        name = name[0] if isinstance(name, list) and name else name
        found.append(Finding("caption-audit", "trigger-missing", "error", _peer_row(name, sidecars, folder), ""))
    for pair in data.get("redundancy", {}).get("exact", []) + data.get("redundancy", {}).get("near", []):
        names = pair if isinstance(pair, list) else pair.get("files", [])
        for name in names[1:] if isinstance(names, list) else []:
            found.append(Finding("caption-audit", "duplicate", "warning", _peer_row(str(name), sidecars, folder), ""))
    return found


def lora_audit(folder: Path, source: Source, peers: Path) -> list[Finding] | None:
    exe = peers / "la" / "bin" / "lora-audit"
    if not exe.exists():
        return None
    sidecars = sidecar_copy(folder)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        subprocess.run([str(exe), "scan", str(sidecars), "--json", str(report), "-q", "-o", scratch],
                       capture_output=True, text=True)
        if not report.exists():
            return []
        data = json.loads(report.read_text(encoding="utf-8"))
    found: list[Finding] = []
    for finding in data.get("findings", []):
        severity = {"error": "error", "warn": "warning", "warning": "warning"}.get(finding.get("sev", ""))
        if severity is None:
            continue
        items = [i for i in finding.get("items", []) if isinstance(i, str)]
        rows = [i for i in items if i.lower().endswith(IMAGE_SUFFIXES + (".txt",))]
        if not rows:
            found.append(Finding("lora-audit", finding["id"], severity, None, finding.get("title", "")))
        for item in rows:
            found.append(Finding("lora-audit", finding["id"], severity, _peer_row(item, sidecars, folder), ""))
    return found


def _peer_row(name: str, sidecars: Path, folder: Path) -> str:
    """A peer's file name as the dataset's row (the image's dataset-relative path)."""
    stem = Path(name).with_suffix("").as_posix()
    stem = stem.split("__")[0]
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").exists():
            return f"{stem}{suffix}"
        for path in folder.rglob(f"{Path(stem).name}{suffix}"):
            return path.relative_to(folder).as_posix()
    return stem


# -- scoring ------------------------------------------------------------------------------------


@dataclass
class Score:
    right: int = 0
    wrong: int = 0
    debatable: int = 0
    defect_rows: int = 0
    found_rows: int = 0
    clean_rows: int = 0
    flagged_clean: int = 0
    facts: int = 0
    facts_stated: int = 0
    wrong_examples: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("right", "wrong", "debatable", "defect_rows", "found_rows", "clean_rows", "flagged_clean",
                     "facts", "facts_stated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.wrong_examples += other.wrong_examples

    def line(self) -> str:
        total = self.right + self.wrong
        precision = f"{self.right / total:.0%}" if total else "-"
        recall = f"{self.found_rows / self.defect_rows:.0%}" if self.defect_rows else "-"
        clean = f"{self.flagged_clean / self.clean_rows:.1%}" if self.clean_rows else "-"
        return (f"findings {total:5d} right {self.right:5d} wrong {self.wrong:5d} precision {precision:>4}  "
                f"defect rows found {self.found_rows}/{self.defect_rows} ({recall})  clean rows flagged "
                f"{self.flagged_clean}/{self.clean_rows} ({clean})  set facts stated {self.facts_stated}/{self.facts}")


def load_labels(name: str) -> dict:
    path = LABELS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"rows": {}, "set_facts": []}


def all_rows(folder: Path, source: Source) -> set[str]:
    metadata = folder / "metadata.jsonl"
    if metadata.exists():
        return {json.loads(line)["file_name"] for line in metadata.read_text(encoding="utf-8").splitlines() if line}
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}


def score(findings: list[Finding], labels: dict, rows: set[str]) -> Score:
    result = Score()
    row_labels: dict[str, dict] = labels.get("rows", {})
    facts: list[dict] = labels.get("set_facts", [])
    tool = findings[0].tool if findings else ""  # "lorakit" for both lorakit runs
    flagged: set[str] = set()
    stated: set[int] = set()
    for finding in findings:
        if finding.severity == "info":  # a set-wide statement: counts for the facts, not for precision
            stated.update(i for i, fact in enumerate(facts) if finding.code in fact.get("codes", {}).get(tool, []))
            continue
        if finding.row is None:
            matched = [i for i, fact in enumerate(facts) if finding.code in fact.get("codes", {}).get(tool, [])]
            debatable = finding.code in labels.get("debatable_set_codes", {}).get(tool, [])
            if matched:
                result.right += 1
                stated.update(matched)
            elif debatable:
                result.debatable += 1
            else:
                result.wrong += 1
                result.wrong_examples.append(f"{finding.code} (set) {finding.message[:140]}")
            continue
        label = row_labels.get(finding.row, {}).get("label", "clean")
        if label == "debatable":
            result.debatable += 1
        elif label == "defect":
            result.right += 1
            flagged.add(finding.row)
        else:
            result.wrong += 1
            flagged.add(finding.row)
            result.wrong_examples.append(f"{finding.code} {finding.row}: {finding.message[:140]}")
    defects = {row for row, label in row_labels.items() if label.get("label") == "defect"}
    debatable_rows = {row for row, label in row_labels.items() if label.get("label") == "debatable"}
    clean = rows - defects - debatable_rows
    result.defect_rows = len(defects)
    result.found_rows = len(defects & flagged)
    result.clean_rows = len(clean)
    result.flagged_clean = len(clean & flagged)
    result.facts = len(facts)
    result.facts_stated = len(stated)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--peers", type=Path, default=DEFAULT_PEERS)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--show", action="store_true", help="list every wrong finding")
    parser.add_argument("--json", type=Path, help="write the findings and scores as JSON")
    args = parser.parse_args(argv)
    totals: dict[str, Score] = {}
    report: dict[str, dict] = {}
    for source in SOURCES:
        if args.only and source.name not in args.only:
            continue
        folder = rebuild(source, args.mirror)
        labels = load_labels(source.name)
        rows = all_rows(folder, source)
        runs = {"lorakit": lorakit(folder, source, init=False), "lorakit+init": lorakit(folder, source, init=True),
                "caption-audit": caption_audit(folder, source, args.peers),
                "lora-audit": lora_audit(folder, source, args.peers)}
        print(f"== {source.name}: {source.what} ({len(rows)} rows)")
        report[source.name] = {}
        for tool, findings in runs.items():
            if findings is None:
                print(f"  {tool:14s} not installed")
                continue
            result = score(findings, labels, rows)
            totals.setdefault(tool, Score()).add(result)
            print(f"  {tool:14s} {result.line()}")
            if args.show:
                for example in result.wrong_examples[:15]:
                    print(f"      wrong: {example}")
            report[source.name][tool] = {"score": result.__dict__,
                                         "findings": [f.__dict__ for f in findings]}
    print("== all sets")
    for tool, result in totals.items():
        print(f"  {tool:14s} {result.line()}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dataset-aware lint, measured: planted failures found and clean rows left alone, side by side
with the peers a user would reach for instead (caption-audit, lora-audit), on the realistic
corpora of tests/corpora.py (clean and planted versions of every dataset).

    python bench/bench_inference.py [--workdir build/inference] [--no-peers]

The peers are installed into their own venv (build/peers) on first use:
`python -m venv build/peers && build/peers/bin/pip install caption-audit==1.3.0 lora-audit==0.1.0`.
Both read caption sidecars only, so CSV/JSONL datasets are given to them as sidecar copies.

For every tool: recall = planted rows reported with a warning/error (CRITICAL/WARNING for
caption-audit; E/W codes for lora-audit) / planted rows; false rows = other rows reported
(on the clean versions and on the unplanted rows of the planted versions). Image-only findings
are left out for every tool (the corpora's images are 8x8 placeholders: lorakit's LK6xx,
lora-audit's W007/W008 resolution warnings).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "build" / "peers"
PEER_PACKAGES = ["caption-audit==1.3.0", "lora-audit==0.1.0"]
LORA_AUDIT_IMAGE_CODES = {"W007", "W008", "W013", "I001", "I002"}


def load_test_module(name: str):
    """A helper module of tests/ (the realistic corpora, the labelled real pictures) by path:
    tests/ is not a package."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sidecar_copy(built_path: Path, target: Path) -> Path:
    """The dataset as image + .txt sidecars (for the peers), keeping the image names."""
    import csv

    folder = built_path if built_path.is_dir() else built_path.parent
    if built_path.is_dir():
        return built_path
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if built_path.suffix == ".csv":
        with built_path.open(newline="", encoding="utf-8") as fh:
            rows = [(r["file_name"], r["text"]) for r in csv.DictReader(fh)]
    else:
        lines = built_path.read_text(encoding="utf-8").splitlines()
        rows = [(d["file_name"], d["text"]) for d in map(json.loads, lines)]
    for image, caption in rows:
        shutil.copy(folder / image, target / image)
        (target / image).with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return target


def lorakit_rows(path: Path, isolated: bool) -> set[str | None]:
    import lora_core
    from lora_core.plugins import load_plugins
    from lora_core.violations import Severity

    result = lora_core.lint(path, registry=load_plugins(builtin_only=True), isolated=isolated, ignore=["LK6"])
    return {v.image for v in result if v.severity in (Severity.ERROR, Severity.WARNING)}


def lorakit_init_rows(path: Path) -> set[str | None]:
    from click.testing import CliRunner

    from lora_core.cli import cli

    folder = path if path.is_dir() else path.parent
    (folder / "lorakit.toml").unlink(missing_ok=True)
    CliRunner().invoke(cli, ["init", str(path)], catch_exceptions=False)
    try:
        return lorakit_rows(path, isolated=False)
    finally:
        (folder / "lorakit.toml").unlink(missing_ok=True)


def _stem_to_image(folder: Path) -> dict[str, str]:
    images = {}
    for image in folder.rglob("*"):
        if image.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
            rel = image.relative_to(folder).as_posix()
            images[rel.rsplit(".", 1)[0]] = rel
    return images


def caption_audit_rows(folder: Path) -> set[str | None]:
    out = subprocess.run([str(PEERS / "bin" / "caption-audit"), str(folder), "--recursive", "--format", "json"],
                         capture_output=True, text=True)
    if not out.stdout.strip():
        return set()  # no trigger given and none inferred: exit 2, nothing reported per row
    data = json.loads(out.stdout)
    images = _stem_to_image(folder)
    stems: set[str] = set()
    pairing = data.get("pairing", {})
    for key in ("images_without_caption", "captions_without_image", "empty_captions", "encoding_problems"):
        stems.update(str(x) if not isinstance(x, dict) else str(x.get("file")) for x in pairing.get(key, []))
    trigger = data.get("trigger", {})
    stems.update(trigger.get("missing_files", []))
    for variant in trigger.get("variants", []):
        stems.update(variant.get("files", []))
    redundancy = data.get("redundancy", {})
    for pair in (*redundancy.get("exact", []), *redundancy.get("near", [])):
        if isinstance(pair, dict):
            stems.update(str(pair[k]) for k in ("a", "b") if k in pair)
    return {images.get(stem, images.get(stem.split("/")[-1], stem)) for stem in stems}


def lora_audit_rows(folder: Path) -> set[str | None]:
    out = subprocess.run([str(PEERS / "bin" / "lora-audit"), "scan", str(folder), "--json", "-", "-q",
                          "-o", str(folder.parent / "_lora_audit_out")], capture_output=True, text=True)
    data = json.loads(out.stdout)
    rows = set()
    for image in data.get("images", []):
        codes = [c for c in image.get("findings", []) if c[0] in "EW" and c not in LORA_AUDIT_IMAGE_CODES]
        if codes:
            rows.add(image["rel"])
    return rows


def ensure_peers() -> bool:
    if (PEERS / "bin" / "caption-audit").exists() and (PEERS / "bin" / "lora-audit").exists():
        return True
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"peers not installed ({exc}); measuring lorakit only")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, default=Path("build/inference"))
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    corpora = load_test_module("corpora")
    peers = not args.no_peers and ensure_peers()
    tools: dict[str, Callable[[Path, Path], set[str | None]]] = {
        "lorakit (no config)": lambda path, side: lorakit_rows(path, isolated=True),
        "lorakit (init config)": lambda path, side: lorakit_init_rows(path),
    }
    if peers:
        tools["caption-audit 1.3.0"] = lambda path, side: caption_audit_rows(side)
        tools["lora-audit 0.1.0"] = lambda path, side: lora_audit_rows(side)
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    totals = {name: {"planted": 0, "found": 0, "false": 0, "seconds": 0.0} for name in tools}
    by_class: dict[str, dict[str, list[int]]] = {name: {} for name in tools}
    print(f"{'dataset':<28} " + " ".join(f"{name:>24}" for name in tools))
    for name in corpora.DATASETS:
        cells = []
        for planted in (False, True):
            built = corpora.build(name, workdir / ("planted" if planted else "clean"), planted=planted)
            side = sidecar_copy(built.path, workdir / "sidecars" / ("planted" if planted else "clean") / name)
            for tool, run in tools.items():
                started = time.perf_counter()
                rows = run(built.path, side)
                totals[tool]["seconds"] += time.perf_counter() - started
                rows.discard(None)  # dataset-level findings are not rows
                hits = {image for image in built.planted if image in rows}
                false = rows - set(built.planted)
                totals[tool]["planted"] += len(built.planted)
                totals[tool]["found"] += len(hits)
                totals[tool]["false"] += len(false)
                for image, failure in built.planted.items():
                    counts = by_class[tool].setdefault(failure, [0, 0])
                    counts[0] += image in rows
                    counts[1] += 1
                if planted:
                    cells.append((tool, f"{len(hits)}/{len(built.planted)} found, {len(false)} false"))
                elif false:
                    cells.append((tool, f"clean: {len(false)} false"))
        shown = {}
        for tool, text in cells:
            shown[tool] = (shown[tool] + "; " if tool in shown else "") + text
        print(f"{name:<28} " + " ".join(f"{shown.get(t, ''):>24}" for t in tools))
    print("\nrecall by failure class (found/planted):")
    classes = sorted({c for per in by_class.values() for c in per})
    print(f"{'class':<20} " + " ".join(f"{t:>24}" for t in tools))
    for failure in classes:
        cells = ("{}/{}".format(*by_class[t].get(failure, [0, 0])) for t in tools)
        print(f"{failure:<20} " + " ".join(f"{cell:>24}" for cell in cells))
    print("\ntotals:")
    for tool, t in totals.items():
        recall = t["found"] / t["planted"] if t["planted"] else 0.0
        precision = t["found"] / (t["found"] + t["false"]) if t["found"] + t["false"] else 1.0
        print(f"  {tool:<24} recall {recall:.2f} ({t['found']}/{t['planted']}), false rows {t['false']}, "
              f"row precision {precision:.2f}, {t['seconds']:.1f} s")


if __name__ == "__main__":
    main()

"""Every benchmark under bench/ still runs, at its smallest size. These time nothing (the figures
live in docs/benchmarks.md); they catch a harness broken by a change elsewhere, as bench_train's
hand-written loop was by SDXL's (hidden, pooled) text encodings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def bench(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(REPO / "bench" / script), "--workdir", str(tmp_path), *args],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


# bench_train.py (tiny and tiny-xl) and bench_caption.py run at their smallest size inside
# test_gpu_check_dry_run_writes_its_json below, which checks their output lines as well.


def test_bench_images(tmp_path):
    out = bench("bench_images.py", "--images", "60", "--repeat", "1", tmp_path=tmp_path)
    assert "cold: median" in out and "cached: median" in out and "LK604" in out and "LK605" in out, out


def test_bench_lint(tmp_path):
    out = bench("bench_lint.py", "--rows", "300", "--repeat", "1", tmp_path=tmp_path)
    assert re.search(r"^all rules concise\s+[\d.]+", out, re.M) and "Found " in out, out
    out = bench("bench_lint.py", "--rows", "300", "--per-rule", tmp_path=tmp_path)
    assert re.search(r"^total [\d.]+ s; worker shares [\d.]+ / [\d.]+$", out, re.M), out


def test_bench_image_quality(tmp_path):
    pytest.importorskip("skimage")
    out = bench("bench_image_quality.py", tmp_path=tmp_path)
    assert re.search(r"^duplicates\s+lorakit LK605\s+[\d.]+\s+[\d.]+", out, re.M), out
    assert re.search(r"^blur\s+lorakit LK604\s+[\d.]+\s+[\d.]+", out, re.M) and "harder copies" in out, out


def test_bench_image_scale(tmp_path):
    from lora_core.testing import write_photo

    folder = tmp_path / "sidecars"
    for i in range(12):
        write_photo(folder / f"{i}.png", f"s{i}", size=64)
        (folder / f"{i}.txt").write_text(f"cybrpnk, street {i}", encoding="utf-8")
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench_image_scale.py"), "--folder", str(folder),
                          "--repeat", "1"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^lorakit warm lint\s+median [\d.]+ s", run.stdout, re.M), run.stdout


def test_bench_realworld_scores_as_its_docstring_says():
    """The real-world bench needs repository snapshots (not in CI); its scoring does not: a row
    finding is right on a defect row, wrong on a clean one, uncounted on a debatable one; a
    set-level finding is right when a set fact lists its code; infos count only as statements."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_realworld", REPO / "bench" / "bench_realworld.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_realworld"] = module
    spec.loader.exec_module(module)
    Finding = module.Finding
    labels = {"rows": {"a.png": {"label": "defect"}, "b.png": {"label": "debatable"}},
              "set_facts": [{"kind": "over-budget", "codes": {"lorakit": ["LK501"]}}]}
    findings = [Finding("lorakit", "LK111", "warning", "a.png", ""),
                Finding("lorakit", "LK604", "warning", "b.png", ""),
                Finding("lorakit", "LK102", "warning", "c.png", ""),
                Finding("lorakit", "LK501", "info", None, ""),
                Finding("lorakit", "LK116", "warning", None, "")]
    score = module.score(findings, labels, {"a.png", "b.png", "c.png", "d.png"})
    assert (score.right, score.wrong, score.debatable) == (1, 2, 1)
    assert (score.found_rows, score.defect_rows, score.flagged_clean, score.clean_rows) == (1, 1, 1, 2)
    assert (score.facts_stated, score.facts) == (1, 1)
    for path in (REPO / "bench" / "realworld" / "labels").glob("*.json"):  # every label file is well formed
        document = json.loads(path.read_text(encoding="utf-8"))
        assert {r["label"] for r in document["rows"].values()} <= {"defect", "debatable"}, path
        assert any(source.name == document["dataset"] for source in module.SOURCES), path


def test_gpu_check_dry_run_writes_its_json(tmp_path):
    """bench/gpu_check.sh on a CPU: every step at its tiny size, and the one JSON a GPU run writes."""
    if shutil.which("timeout") is None:
        pytest.skip("needs coreutils' timeout")
    env = {**os.environ, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--dry-run"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_check.json").read_text(encoding="utf-8"))
    assert summary["dry_run"] and summary["ok"], json.dumps(summary["steps"], indent=1)[-3000:]
    steps = summary["steps"]
    assert set(steps) == {"cuda_tests", "train_sd15_bs1", "train_sdxl_bs1", "caption_models", "caption_light"}
    assert [f["setup"] for f in steps["train_sd15_bs1"]["figures"]] == [
        "tiny 64px bs1 sdpa no checkpointing off", "tiny 64px bs1 sdpa no checkpointing on"]
    assert [f["setup"] for f in steps["train_sdxl_bs1"]["figures"]] == ["tiny-xl 64px bs1 sdpa no checkpointing on"]
    for figure in steps["train_sd15_bs1"]["figures"]:  # lorakit's step and the hand-written loop both ran
        assert figure["lorakit"] > 0 and figure["hand"] > 0 and figure["device"] == "cpu"
    assert steps["caption_models"]["figures"][0]["captioner"] == "blip"
    assert steps["caption_models"]["figures"][0]["images_per_s"] > 0
    assert any(f["what"].startswith("openai concurrency 16") for f in steps["caption_light"]["figures"])


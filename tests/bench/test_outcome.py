"""bench/outcome at its smallest size, end to end: a tiny base model and judge built and saved,
a clean and a broken caption arm written, the broken one fixed by `lorakit lint --fix
--unsafe-fixes`, LoRAs trained by `lorakit train` (the lint gate included), sampled, judged, and
docs/outcome.md with its grid written. It checks the plumbing, not the effect sizes: those need
the documented base (docs/outcome.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")

REPO = Path(__file__).resolve().parents[2]
OUTCOME = REPO / "bench" / "outcome"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(OUTCOME / script), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_world_is_deterministic_and_its_captions_break_as_named():
    sys.path.insert(0, str(OUTCOME))
    try:
        from run import captions_for, clean
        from world import Scene, lora_scenes, render
    finally:
        sys.path.remove(str(OUTCOME))
    scene = Scene("circle", "red", "white", "outline", 3)
    assert (render(scene) == render(scene)).all() and render(scene).shape == (64, 64, 3)
    assert not (render(scene) == render(Scene("square", "red", "white", "outline", 3))).all()
    pictures = lora_scenes(48, 0)
    assert len({p.describe() for p in pictures}) == 48  # every subject once
    assert clean(pictures[0]) == f"zqx, {pictures[0].describe()}"
    for failure, marker in (("style-drift", "flat style"), ("vague", None), ("trigger", None),
                            ("wrong-subject", None), ("duplicated", None)):
        broken = captions_for(pictures, failure, 0.3, 0)
        changed = [b for b, p in zip(broken, pictures) if b != clean(p)]
        assert len(changed) == round(0.3 * 48) or failure == "duplicated", failure
        assert marker is None or all(marker in c for c in changed)
    assert captions_for(pictures, "style-drift", 0.3, 0) == captions_for(pictures, "style-drift", 0.3, 0)


def test_smoke_run_end_to_end(tmp_path):
    base = tmp_path / "base"
    built = _run("base.py", "--out", str(base), "--size", "tiny")
    assert built.returncode == 0, built.stderr[-3000:]
    assert (base / "model_index.json").exists() and (base / "judge" / "judge.safetensors").exists()
    assert json.loads((base / "outcome-base.json").read_text())["quality"].keys() == {"shape", "colour", "background",
                                                                                       "style"}
    ran = _run("run.py", "--size", "smoke", "--base", str(base), "--work", str(tmp_path / "work"),
               "--docs", str(tmp_path / "docs"))
    assert ran.returncode == 0, ran.stderr[-3000:]
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    arms = results["arms"]
    assert set(arms) == {"clean", "style-drift@60%", "style-drift@60%+fix-safe", "style-drift@60%+fix-unsafe",
                         "style-drift@60%+fix-pinned"}
    assert arms["clean"]["seeds"][0]["lint gate"] == "passed"  # clean captions pass `lorakit train`'s gate
    assert arms["clean"]["seeds"][0]["captions right"] == 8
    assert arms["style-drift@60%"]["seeds"][0]["captions right"] == 3
    # pinned, LK205 reports "flat style" and --unsafe-fixes removes it: every caption is the clean one
    assert arms["style-drift@60%+fix-pinned"]["seeds"][0]["captions right after the fix"] == 8
    assert results["loras_trained"] >= 2
    runs = list((tmp_path / "work" / "runs").glob("*/pytorch_lora_weights.safetensors"))
    assert len(runs) == results["loras_trained"]  # real LoRA files, loaded back for sampling
    page = (tmp_path / "docs" / "outcome.md").read_text()
    assert "| style-drift:" in page and "## What lint said and did" in page
    assert (tmp_path / "docs" / "images" / "outcome-grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the page again from the saved run, nothing trained: the same page, the same grid
    again = _run("report.py", "--work", str(tmp_path / "work"), "--docs", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "again" / "outcome.md").read_text() == page
    assert (tmp_path / "again" / "images" / "outcome-grid.png").read_bytes() == \
        (tmp_path / "docs" / "images" / "outcome-grid.png").read_bytes()

"""Every benchmark under bench/ still runs, at its smallest size. These time nothing (the figures
live in docs/benchmarks.md); they catch a harness broken by a change elsewhere, as bench_train's
hand-written loop was by SDXL's (hidden, pooled) text encodings."""

from __future__ import annotations

import os
import re
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


@pytest.mark.parametrize("size", ["tiny", "tiny-xl"])
def test_bench_train(tmp_path, size):
    out = bench("bench_train.py", "--size", size, "--rounds", "1", "--steps", "1", "--images", "4",
                tmp_path=tmp_path)
    assert re.search(rf"^{size} 64px bs2 sdpa no checkpointing off: lorakit [\d.]+ steps/s, hand loop [\d.]+ "
                     r"steps/s, ratio [\d.]+ \(cpu\)$", out, re.M), out


def test_bench_caption(tmp_path):
    out = bench("bench_caption.py", "--captioners", "blip", "--images", "2", "--batch-sizes", "2",
                tmp_path=tmp_path)
    assert re.search(r"^blip\s+tiny\s+batch\s+2:\s+[\d.]+ images/s", out, re.M), out


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

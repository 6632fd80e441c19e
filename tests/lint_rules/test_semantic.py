"""LK8xx: the statistics on crafted embeddings (so the outlier, swap and style logic is checked
exactly), then the rules end to end through `lorakit lint --semantic` with a tiny random CLIP,
the JSON `score` field, the one-line error for a missing model, and the off-by-default switch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.testing import make_csv_dataset

np = pytest.importorskip("numpy")


def unit(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_robust_z_ignores_the_outliers_it_finds():
    from lorakit_rules.semantic import mismatch_outliers, robust_z

    paired = np.array([0.30, 0.31, 0.29, 0.30, 0.32, 0.28, 0.30, 0.31, 0.05, 0.30])
    z = robust_z(paired)
    assert z[8] < -10 and abs(z[0]) < 0.5  # one bad pair does not move the median or the MAD
    assert [i for i, _ in mismatch_outliers(paired, 3.0)] == [8]
    assert mismatch_outliers(paired[:5], 3.0) == []  # too few pairs to call anything an outlier
    assert robust_z(np.full(10, 0.3)).tolist() == [0.0] * 10


def test_swaps_are_found_in_blocks_exactly():
    from lorakit_rules.semantic import swaps

    rng = np.random.default_rng(0)
    images = unit(rng.normal(size=(50, 16)))
    captions = unit(images + 0.05 * rng.normal(size=images.shape))  # each caption near its own image
    captions[[3, 7]] = captions[[7, 3]]  # two rows swapped
    found = swaps(captions, images, margin=0.02, block=8)  # blocks smaller than the set
    assert sorted((a, b) for a, b, *_ in found) == [(3, 7), (7, 3)]
    assert all(there > own for _, _, there, own in found)


def test_style_gaps():
    from lorakit_rules.semantic import style_gaps

    style = unit([[1, 0, 0, 0]])[0]
    neutral = unit([[0, 1, 0, 0], [0, 0, 1, 0]])
    images = unit([[0.9, 0.1, 0, 0], [0.1, 0.9, 0, 0]])  # the first looks like the style
    captions = unit([[0.2, 0.9, 0, 0.1], [0.1, 0.9, 0, 0]])
    looks, beats = style_gaps(images, captions, style, neutral)
    assert looks[0] > 0.5 and beats[0] > 0.5
    assert looks[1] < 0 and beats[1] < 0


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def lint_json(folder: Path, *args: str) -> tuple[int, list[dict], str]:
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--format", "json",
                          "--select", "LK8", *args], capture_output=True, text=True, timeout=300)
    return run.returncode, json.loads(run.stdout) if run.stdout.strip() else [], run.stderr


def test_semantic_rules_run_end_to_end_with_scores(tiny_clip, tmp_path):
    rows = [(f"{i:02d}.png", f"cybrpnk, neon city street number {i}") for i in range(12)]
    folder = make_csv_dataset(tmp_path / "ds", rows).parent
    (folder / "lorakit.toml").write_text('[style]\nrequired = ["cyberpunk"]\n[semantic]\noutlier-z = 0.5\n'
                                         'swap-margin = 0.0\nstyle-margin = 0.0\n', encoding="utf-8")
    code, items, stderr = lint_json(folder, "--clip-model", str(tiny_clip))
    assert code in (0, 1), stderr
    # Random weights make random judgements; what matters here is the plumbing: every LK8xx finding
    # carries its CLIP score in the JSON output, and the cache is written for the next run.
    assert {item["code"] for item in items} <= {"LK801", "LK802", "LK803"}
    assert all(isinstance(item["score"], float) for item in items)
    assert list((folder / ".lorakit_cache").glob("clip-*.npz"))
    again_code, again, _ = lint_json(folder, "--clip-model", str(tiny_clip))
    assert (again_code, again) == (code, items)  # the cached embeddings give the same result


def test_semantic_rules_are_off_by_default_and_import_no_torch(tmp_path):
    folder = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon")]).parent
    code = ("import sys\nfrom lora_core.cli import cli\n"
            f"try:\n    cli(prog_name='lorakit', args=['lint', {str(folder)!r}, '--select', 'LK8'])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TORCH' if 'torch' in sys.modules else 'LIGHT')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "EXIT 0" in out and out.strip().endswith("LIGHT")


def test_a_missing_clip_model_is_one_line(tmp_path):
    folder = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon")]).parent
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--semantic"],
                         capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(
        "lorakit: error: --clip-model: model 'openai/clip-vit-large-patch14' is not in the local Hugging Face cache")

"""Inference never crashes and its fixes settle, whatever the captions: random datasets made of
the pieces real ones have (triggers and their typos, style and generic words, booru tags,
identity tokens, separators, odd characters), as CSV or as kohya folders."""

from __future__ import annotations

import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lora_core
from lora_core.testing import make_csv_dataset, make_sidecar_dataset

PIECES = ["cybrpnk", "Cybrpnk", "cybrpnk_styel", "cybr pnk", "sks", "sks dog", "a dog", "person_A", "person_B",
          "portrait", "woman", "watercolor", "photorealistic", "3d render", "ink-wash landscape",
          "landscape painting", "machine", "steampunk gear device", "long_hair", "long hair", "1girl", "solo",
          "neon city", "rain", "a photo of", "[style: cyberpunk]", "\u200b", "\u00e9t\u00e9", "", " ", "_", "-",
          "a" * 40]
SEPARATORS = [", ", ", ", ", ", "; ", " ", " | ", ",", "\n"]

caption = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), min_size=0, max_size=8).map(
    lambda parts: "".join(p + s for p, s in parts).strip("\n"))
folders = st.sampled_from(["", "10_person_A/", "3_person_B/", "5_sks_dog/", "2_cyberpunk_style/", "1_x y/"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(folders, caption), min_size=0, max_size=14), st.booleans())
def test_inference_never_crashes_and_fixes_settle(tmp_path, registry, rows, as_kohya):
    folder = tmp_path / "ds"
    shutil.rmtree(folder, ignore_errors=True)
    if as_kohya:
        files = {f"{where}{i}.png": text for i, (where, text) in enumerate(rows)}
        if not files:
            return
        make_sidecar_dataset(folder, files)
        target = folder
    else:
        target = make_csv_dataset(folder, [(f"{i}.png", text) for i, (_, text) in enumerate(rows)], images=False)
    result = lora_core.lint(target, registry=registry, isolated=True, ignore=["LK6"])
    assert not result.crashes, [c.describe() for c in result.crashes]
    fixed = lora_core.fix(target, registry=registry, isolated=True, unsafe=True, ignore=["LK6"])
    assert not fixed.remaining.crashes, [c.describe() for c in fixed.remaining.crashes]
    assert fixed.converged


def test_no_captions_and_captions_holding_every_usual_separator_lint_cleanly(tmp_path, registry):
    empty = make_csv_dataset(tmp_path / "empty", [], images=False)
    assert not lora_core.lint(empty, registry=registry, isolated=True, ignore=["LK6"]).crashes
    hostile = "cybrpnk, neon \x1f\x1e\ue000\U0010fffd city"
    rows = [(f"{i}.png", hostile + f", view {i}") for i in range(6)]
    path = make_csv_dataset(tmp_path / "hostile", rows, images=False)
    result = lora_core.lint(path, registry=registry, isolated=True, ignore=["LK6"])
    assert not result.crashes, [c.describe() for c in result.crashes]

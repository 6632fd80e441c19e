"""LK604 and LK605 on real pictures (tests/real_images.py): scikit-image's photographs, flat art
and real motion-blurred photo, and the DreamBooth photographs when ../shared/data is there, with
planted copies and planted blur. The synthetic pictures of test_images.py stay as unit fixtures;
this is what proves the rules hold on pictures nobody made to pass."""

from __future__ import annotations

import pytest
from conftest import load_test_module

import lora_core

pytest.importorskip("PIL.Image")
real_images = load_test_module("real_images")


def findings(folder, registry, code):
    result = lora_core.lint(folder / "metadata.csv", registry=registry, select=[code])
    assert not result.crashes, [c.describe() for c in result.crashes]
    return list(result)


def test_duplicates_are_the_planted_copies_and_nothing_else(real_truth, registry):
    groups = real_images.duplicate_truth(real_truth["duplicates"])
    found = findings(real_truth["duplicates"], registry, "LK605")
    pairs = {frozenset((v.image, v.data["duplicate_of"])) for v in found}
    wrong = [sorted(p) for p in pairs if not any(p <= g for g in groups)]
    missed = [sorted(g) for g in groups if not any(p <= g for p in pairs)]
    assert wrong == []  # no two poses, no two shots of one cat
    assert len(missed) <= 0.05 * len(groups), missed
    near = [v.message for v in found if "same picture" in v.message]
    assert near and all("detail similarity" in m for m in near)  # the message says what was measured


def test_blur_finds_gaussian_motion_upscaled_and_real_blur_but_not_bokeh_or_flat_art(real_truth, registry):
    truth = real_images.blur_truth(real_truth["blur"])
    flagged = {v.image for v in findings(real_truth["blur"], registry, "LK604")}
    blurry = {name for name, is_blurry in truth.items() if is_blurry}
    precision = len(flagged & blurry) / max(1, len(flagged))
    recall = len(flagged & blurry) / len(blurry)
    assert precision >= 0.9 and recall >= 0.9, (sorted(flagged - blurry), sorted(blurry - flagged))
    assert "skimage-clock_motion.png" in flagged  # a real motion-blurred photograph
    for sharp in ("skimage-chelsea.png", "skimage-horse.png", "skimage-logo.png", "skimage-page.png"):
        assert sharp not in flagged  # bokeh behind a sharp cat; a silhouette; a logo; a scanned page
    dreambooth = [n for n in truth if n.startswith(("cat-", "red_cartoon-")) and not truth[n]]
    assert not set(dreambooth) & flagged  # the portraits with soft backgrounds, the cartoon character


def test_the_verdicts_are_cached(real_truth, registry, monkeypatch):
    import lora_core.toolkit.duplicates as duplicates

    findings(real_truth["duplicates"], registry, "LK605")  # fills the caches
    calls = []
    real = duplicates.similarity
    monkeypatch.setattr(duplicates, "similarity", lambda a, b: calls.append(1) or real(a, b))
    again = findings(real_truth["duplicates"], registry, "LK605")
    assert again and calls == []  # nothing compared again on an unchanged dataset


def test_an_edited_variant_is_not_the_same_picture_but_a_copy_is(tmp_path, registry):
    """Two frames of one game scene, a render of one template with another prop: a part of the
    picture differs strongly and the rest not at all. A re-encoded copy differs a little everywhere."""
    import io

    from PIL import Image

    from lora_core.testing import photo_png_bytes

    base = Image.open(io.BytesIO(photo_png_bytes("scene", 512))).convert("RGB")
    folder = tmp_path / "ds"
    folder.mkdir()
    base.save(folder / "scene.png")
    edited = base.copy()
    edited.paste(Image.open(io.BytesIO(photo_png_bytes("sprite", 512))).convert("RGB").resize((120, 150)), (300, 260))
    edited.save(folder / "edited.png")
    base.save(folder / "copy.jpg", quality=70)
    rows = [("scene.png", "a scene"), ("edited.png", "the scene with a figure"), ("copy.jpg", "the scene again")]
    from lora_core.testing import make_csv_dataset

    make_csv_dataset(folder, rows, images=False)
    result = lora_core.lint(folder / "metadata.csv", registry=registry, select=["LK605"])
    assert sorted(v.image for v in result) == ["copy.jpg"]

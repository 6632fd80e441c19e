"""Caption forms: each real shape classified, and a uniform set never flipped caption by caption."""

from __future__ import annotations

import pytest

from lora_core.toolkit.forms import caption_form, settled_forms


@pytest.mark.parametrize("caption, form", [
    ("tk, 1girl, solo, looking_at_viewer, blush, smile, open_mouth, blue_eyes", "tags"),  # WD14
    ("cybrpnk, neon city, rain, night", "tags"),
    ("a red car, parked on a street, at night, under neon signs", "phrases"),
    ("A human character, anime, profile, looking left, pink kimono clothing, water hair", "tags"),  # attributes
    ("a room with red curtains and a red rug", "prose"),  # BLIP: one sentence
    ("[trigger]. A young woman sits on a desk; her eye is red. Behind her, a chalkboard.", "prose"),
    ("An upper-body shot of [trigger] standing waist-deep in a pool, wearing a swimsuit, facing the wall", "phrases"),
    ("neon", None),
    ("", None),
])
def test_each_real_shape(caption, form):
    assert caption_form(caption) == form


def test_a_borderline_caption_takes_its_sets_form():
    """A uniform set of comma-phrase captions: a short one of three phrases is not a tag list."""
    captions = [f"a woman sitting on a bench, in a park {i}, at sunset" for i in range(9)] + ["woman, bench, park"]
    forms = [caption_form(c) for c in captions]
    assert forms[-1] == "tags"
    assert settled_forms(forms)[-1] == "phrases"
    # prose and tags are never neighbours: a tag list in a prose set stays a tag list
    prose = [f"A woman sits on bench {i}. The park behind her is green and quiet today." for i in range(9)]
    mixed = [caption_form(c) for c in [*prose, "1girl, solo, bench, park, sitting"]]
    assert settled_forms(mixed)[-1] == "tags"

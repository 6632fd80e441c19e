"""LK4xx template rules."""

from __future__ import annotations

import pytest

import lora_core

TEMPLATE = """
[template]
pattern = "{style} {subject} with {features}, {lighting}, {background}"
[template.slots]
style = ["cyberpunk", "watercolor"]
"""


def test_template_mismatch_names_the_missing_part(lint_with_config):
    rows = [("a.png", "cyberpunk street vendor with neon signs, magenta rim light, night market"),
            ("b.png", "cyberpunk street vendor, neon light, night market"),
            ("c.png", "Cyberpunk android with chrome implants,cyan backlight ,  server room"),
            ("d.png", "cyberpunk android with chrome implants, cyan backlight"),
            ("e.png", " with neon signs, dusk, alley")]
    result, _ = lint_with_config(rows, TEMPLATE, select=["LK401"])
    assert [(v.image, v.message.split(": ", 1)[1]) for v in result] == [
        ("b.png", "missing the literal `with` after {subject}"),
        ("d.png", "missing the literal `,` after {lighting}"),
        ("e.png", "missing the literal `with` after {subject}"),
    ]


def test_slot_vocabulary(lint_with_config):
    rows = [("a.png", "steampunk street vendor with goggles, gas light, alley"),
            ("b.png", "Watercolor fox with red fur, soft light, snow")]
    (violation,) = lint_with_config(rows, TEMPLATE, select=["LK402"])[0]
    assert violation.image == "a.png"
    assert violation.message == "{style} is `steampunk`, not one of: cyberpunk, watercolor"
    assert violation.location.column == 8  # the slot value itself is marked


def test_bad_pattern_is_a_config_error(tmp_path, registry):
    from lora_core.testing import make_csv_dataset

    path = make_csv_dataset(tmp_path, [("a.png", "x y z")])
    (tmp_path / "lorakit.toml").write_text('[template]\npattern = "{a}{b}"\n', encoding="utf-8")
    with pytest.raises(lora_core.ConfigError, match="need literal text between them"):
        lora_core.lint(path, registry=registry)

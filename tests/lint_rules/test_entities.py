"""LK3xx identity and trigger rules."""

from __future__ import annotations

from conftest import captions_of

import lora_core

PEOPLE = '[entities]\nidentities = ["person_A", "person_B"]\n'
TRIGGER = '[entities]\ntrigger = "cybrpnk"\nkeep-tokens = 1\n'


def test_unbound_person(lint_with_config):
    rows = [("a.png", "portrait, woman, red jacket, studio light"), ("b.png", "portrait of person_A, front view"),
            ("c.png", "a man walking a dog in the park"), ("d.png", "neon street, rain, night")]
    result, _ = lint_with_config(rows, PEOPLE, select=["LK301"])
    assert [(v.image, v.message) for v in result] == [
        ("a.png", "`portrait` without an identity token (person_A / person_B)"),
        ("c.png", "`man` without an identity token (person_A / person_B)")]
    assert list(lint_with_config(rows, "", select=["LK301"])[0]) == []  # only when identities are declared


def test_unknown_identity_typo_and_fix(lint_with_config):
    rows = [("a.png", "portrait of person_a, smiling, studio"), ("b.png", "portrait of person_C, outdoors, sun"),
            ("c.png", "portrait of person_A, front view, clear face")]
    result, _ = lint_with_config(rows, PEOPLE, select=["LK302"])
    assert [v.image for v in result] == ["a.png", "b.png"]
    assert "did you mean `person_A`?" in result[0].message and "declared: person_A, person_B" in result[1].message
    fixed, _ = lint_with_config(rows, PEOPLE, select=["LK302"], fix=True, unsafe=True)
    assert captions_of(fixed)[0] == "portrait of person_A, smiling, studio"


def test_multiple_identities(lint_with_config):
    rows = [("a.png", "person_A and person_B at a cafe"), ("b.png", "person_A, portrait, studio light")]
    (violation,) = lint_with_config(rows, PEOPLE, select=["LK303"])[0]
    assert violation.image == "a.png" and "2 identities: person_A, person_B" in violation.message


def test_identity_imbalance(lint_with_config):
    rows = [(f"a{i}.png", f"portrait of person_A, look {i}") for i in range(8)] + [
        (f"b{i}.png", f"portrait of person_B, look {i}") for i in range(2)]
    (violation,) = lint_with_config(rows, PEOPLE, select=["LK304"])[0]
    assert "`person_A` is in 80% of the 10 identity captions (limit 60%)" in violation.message
    balanced = rows[:5] + [(f"b{i}.png", f"portrait of person_B, look {i}") for i in range(5)]
    assert list(lint_with_config(balanced, PEOPLE, select=["LK304"])[0]) == []


def test_trigger_missing_exact_match_and_traps(lint_with_config):
    rows = [("a.png", "cybrpnk, neon city, rain"), ("b.png", "neon city, rain, night"),
            ("c.png", "cybr\u200dpnk, neon city, rain"), ("d.png", "Cybrpnk, alley, neon"),
            ("e.png", "cybrpnks, alley, neon")]
    result, _ = lint_with_config(rows, TRIGGER, select=["LK305"])
    by_image = {v.image: v.message for v in result}
    # `Cybrpnk` and `cybrpnks` are the trigger written another way: LK307's, not reported twice.
    assert sorted(by_image) == ["b.png", "c.png"]
    assert by_image["b.png"] == "trigger `cybrpnk` is missing"
    assert "invisible character (U+200D zero width joiner)" in by_image["c.png"]
    result, _ = lint_with_config(rows, TRIGGER, select=["LK307"])
    by_image = {v.image: v.message for v in result}
    assert sorted(by_image) == ["d.png", "e.png"]
    assert by_image["d.png"] == "`Cybrpnk` is the trigger `cybrpnk` written another way (letter case)"
    assert by_image["e.png"] == "`cybrpnks` is the trigger `cybrpnk` written another way (a typo)"


def test_trigger_missing_fix_inserts_in_front(lint_with_config):
    rows = [("a.png", "neon city, rain, night")]
    fixed, _ = lint_with_config(rows, TRIGGER, select=["LK305"], fix=True, unsafe=True)
    assert captions_of(fixed) == ["cybrpnk, neon city, rain, night"]


def test_trigger_position_and_fix(lint_with_config):
    rows = [("a.png", "neon city, rain, cybrpnk, night"), ("b.png", "cybrpnk, neon city, rain"),
            ("c.png", "neon city\uff0ccybrpnk, rain"),
            # The first occurrence is part of a longer word; the trigger itself comes later.
            ("d.png", "cybrpnkish glow, rain, cybrpnk"), ("e.png", "my_cybrpnk, cybrpnk, rain")]
    result, _ = lint_with_config(rows, TRIGGER, select=["LK306"])
    assert [v.image for v in result] == ["a.png", "c.png", "d.png", "e.png"]
    assert "is tag 3" in result[2].message and "is tag 2" in result[3].message
    assert "trigger `cybrpnk` is tag 3; keep-tokens is 1" in result[0].message
    fixed, _ = lint_with_config(rows[:2], TRIGGER, select=["LK306"], fix=True)
    assert captions_of(fixed) == ["cybrpnk, neon city, rain, night", "cybrpnk, neon city, rain"]
    assert list(lint_with_config(rows[:2], TRIGGER.replace("keep-tokens = 1", "keep-tokens = 3"),
                                 select=["LK306"])[0]) == []


def test_look_alike_letters_are_a_variant_replaced_in_place(tmp_path, registry):
    """Issue 23 #12: `суbrpnk` (Cyrillic) became `cybrpnk, суcybrpnk` and `cybrpnķ` became
    `cybrpnk, cybrpnkķ` under --fix --unsafe-fixes; neither was reported before the fix."""
    from lora_core.testing import make_csv_dataset

    rows = [(f"{i}.png", f"cybrpnk, neon street {i}, rain, night") for i in range(20)]
    rows[3] = ("3.png", "\u0441\u0443brpnk, neon street 3, rain, night")
    rows[4] = ("4.png", "cybrpn\u0137, neon street 4, rain, night")
    rows[5] = ("5.png", "\u0421ybrpnk, neon street 5, rain, night")  # a capital Cyrillic С
    path = make_csv_dataset(tmp_path / "ds", rows)
    found = lora_core.lint(path, registry=registry, select=["LK3"])
    assert sorted((v.code, v.image) for v in found) == [("LK307", "3.png"), ("LK307", "4.png"), ("LK307", "5.png")]
    assert all("look-alike letters" in v.message for v in found)
    lora_core.fix(path, registry=registry, unsafe=True, select=["LK3"])
    text = path.read_text(encoding="utf-8")
    assert text.isascii() and text.count("cybrpnk, neon street") == 20
    second = lora_core.fix(path, registry=registry, unsafe=True, select=["LK3"])
    assert not second.changes  # settled: a second --fix changes nothing

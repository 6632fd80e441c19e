"""LK1xx caption hygiene rules: the firing case, the clean case and the fix for each."""

from __future__ import annotations

from pathlib import Path

import pytest

import lora_core
from lora_core.testing import make_csv_dataset


def fixed_captions(tmp_path: Path, registry, captions: list[str], unsafe: bool = False) -> list[str]:
    rows = [(f"img_{i}.png", c) for i, c in enumerate(captions)]
    path = make_csv_dataset(tmp_path / "fix", rows)
    lora_core.fix(path, registry=registry, isolated=True, unsafe=unsafe)
    result = lora_core.lint(path, registry=registry, isolated=True)
    assert not result.crashes, [c.describe() for c in result.crashes]
    return [r.caption for r in result.datasets[0].dataset.records]


CLEAN = "cybrpnk, neon city, rain, night"


@pytest.mark.parametrize(
    ("caption", "message", "column"),
    [
        # `a.png,"` puts a quoted caption at column 8; `a.png,` an unquoted one at column 7.
        (" cybrpnk, neon city", "starts with whitespace", 8),
        ("cybrpnk, neon city ", "ends with whitespace", 26),
        ("cybrpnk,  neon city", "2 spaces in a row", 16),
        ("cybrpnk\tneon city", "tab", 14),
        ("cybrpnk , neon city", "space before a separator", 15),
        ("cybrpnk,\nneon city", "line break", 16),
    ],
)
def test_whitespace_fires_at_the_exact_column(lint_rows, caption, message, column):
    (violation,) = lint_rows([("a.png", caption)], codes=["LK101"])
    assert message in violation.message
    assert (violation.location.line, violation.location.column) == (2, column)
    assert violation.fix is not None


def test_whitespace_clean(lint_rows):
    assert lint_rows([("a.png", CLEAN)], codes=["LK101"]) == []


def test_whitespace_fix(tmp_path, registry):
    assert fixed_captions(tmp_path, registry, ["  cybrpnk ,  neon\tcity\n rain  "]) == ["cybrpnk, neon city rain"]


def test_mixed_separators_within_caption_and_across_dataset(lint_rows):
    found = lint_rows([("a.png", "cybrpnk, neon city; rain"), ("b.png", "cybrpnk | alley"), ("c.png", CLEAN)],
                      codes=["LK102"])
    assert [v.image for v in found] == ["a.png", "b.png"]
    assert "mixes `,` with `;`" in found[0].message
    assert "this dataset separates tags with `,`" in found[1].message


def test_mixed_separators_fix_and_clean(tmp_path, registry, lint_rows):
    assert lint_rows([("a.png", CLEAN)], codes=["LK102"]) == []
    assert fixed_captions(tmp_path, registry, ["cybrpnk; neon city|rain", CLEAN]) == [
        "cybrpnk, neon city, rain", CLEAN]


def test_duplicate_tag_ignores_case_and_spacing(lint_rows):
    (violation,) = lint_rows([("a.png", "cybrpnk, neon city, rain, Neon  City")], codes=["LK103"])
    assert "`Neon  City` appears twice" in violation.message
    assert lint_rows([("a.png", CLEAN)], codes=["LK103"]) == []


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\t", "\u2009"])
def test_duplicate_tag_hidden_by_an_odd_space(lint_rows, space):
    """CLIP splits on every Unicode space: `neon<NBSP>city` is the same tag to the text encoder."""
    (violation,) = lint_rows([("a.png", f"cybrpnk, neon city, rain, neon{space}city")], codes=["LK103"])
    assert "appears twice" in violation.message
    assert lint_rows([("a.png", "cybrpnk, neon city, neoncity")], codes=["LK103"]) == []  # not spacing only


def test_duplicate_tag_with_full_width_comma(lint_rows):
    (violation,) = lint_rows([("a.png", "cybrpnk，rain，cybrpnk")], codes=["LK103"])
    assert "cybrpnk" in violation.message


def test_duplicate_tag_fix(tmp_path, registry):
    assert fixed_captions(tmp_path, registry, ["cybrpnk, rain, neon, rain, rain"]) == ["cybrpnk, rain, neon"]


@pytest.mark.parametrize(
    ("caption", "message"),
    [("cybrpnk,, rain", "empty tag"), ("cybrpnk, , rain", "empty tag"), (", cybrpnk", "starts with"),
     ("cybrpnk, rain,", "ends with"), ("cybrpnk, rain, ", "ends with")],
)
def test_empty_tag(lint_rows, caption, message):
    found = lint_rows([("a.png", caption)], codes=["LK104"])
    assert len(found) == 1 and message in found[0].message


def test_empty_tag_clean_and_fix(tmp_path, registry, lint_rows):
    assert lint_rows([("a.png", CLEAN)], codes=["LK104"]) == []
    assert fixed_captions(tmp_path, registry, ["cybrpnk,, rain, , neon,"]) == ["cybrpnk, rain, neon"]


@pytest.mark.parametrize(
    ("caption", "codepoint"),
    [("cybr\u200bpnk, rain", "U+200B"), ("cybr\u200dpnk, rain", "U+200D"), ("cyber\u00a0punk, rain", "U+00A0"),
     ("cybrpnk\x00, rain", "U+0000"), ("\ufeffcybrpnk", "U+FEFF"), ("cybr\u00adpnk", "U+00AD")],
)
def test_invisible_character(lint_rows, caption, codepoint):
    found = lint_rows([("a.png", caption)], codes=["LK105"])
    assert len(found) == 1 and codepoint in found[0].message


def test_invisible_character_fix_restores_the_trigger(tmp_path, registry, lint_rows):
    assert lint_rows([("a.png", CLEAN)], codes=["LK105"]) == []
    assert fixed_captions(tmp_path, registry, ["cybr\u200dpnk, cyber\u00a0punk city"]) == ["cybrpnk, cyber punk city"]


def test_typographic_characters(lint_rows, tmp_path, registry):
    found = lint_rows([("a.png", "\u201cneon\u201d city\uff0crain \u2014 night\u2026")], codes=["LK106"])
    assert len(found) == 5
    assert lint_rows([("a.png", CLEAN)], codes=["LK106"]) == []
    assert fixed_captions(tmp_path, registry, ["\u201cneon\u201d city\uff0crain"]) == ['"neon" city,rain']


def test_duplicate_caption(lint_rows):
    found = lint_rows([("a.png", "city at night with lights"), ("b.png", "city at night with lights "),
                       ("c.png", CLEAN)], codes=["LK107"])
    assert [v.image for v in found] == ["a.png", "b.png"]
    assert "same caption as 1 other image" in found[0].message
    assert found[0].data == {"group_size": 2}


def test_near_duplicate_caption_is_linear_and_exact(lint_rows):
    rows = [("a.png", "cybrpnk, neon city, rain"), ("b.png", "Rain, neon city, cybrpnk."),
            ("c.png", "A neon city in the rain"), ("d.png", "neon city in rain"),
            ("e.png", "cybrpnk, neon rain, city"),  # same words, different tags: not trivial
            ("f.png", "a cat on the mat"), ("g.png", "the mat on a cat")]  # same words, other meaning
    found = lint_rows(rows, codes=["LK108"])
    assert sorted(v.image for v in found) == ["b.png", "d.png"]


def test_mixed_caption_style(lint_rows):
    rows = [(f"{i}.png", f"cybrpnk, neon city, rain, view {i}") for i in range(4)]
    rows.append(("s.png", "a neon city at night in the pouring rain"))
    (violation,) = lint_rows(rows, codes=["LK109"])
    assert violation.image == "s.png" and "4 of 5 captions are tag lists" in violation.message
    assert lint_rows(rows[:4], codes=["LK109"]) == []


def test_second_fix_changes_nothing(tmp_path, registry):
    rows = [("a.png", "  cybr\u200bpnk,, neon city ; rain, rain,"), ("b.png", "cybrpnk, alley")]
    path = make_csv_dataset(tmp_path / "ds", rows)
    first = lora_core.fix(path, registry=registry, isolated=True)
    assert first.applied > 0
    content = path.read_bytes()
    second = lora_core.fix(path, registry=registry, isolated=True)
    assert second.applied == 0 and second.changes == {}
    assert path.read_bytes() == content


def test_captions_holding_the_corpus_separator_still_lint(lint_rows):
    # \x1f and \x1e are the corpus separators' first choices: captions holding them force another.
    found = lint_rows([("a.png", "cyb\x1frpnk, neon city, rain"), ("b.png", "x\x1ey, neon  city, rain, rain")])
    assert sorted((v.code, v.image) for v in found) == [
        ("LK101", "b.png"), ("LK103", "b.png"), ("LK105", "a.png"), ("LK105", "b.png")]

"""Config discovery, validation and rule selection."""

from __future__ import annotations

import pytest

import lora_core
from lora_core.testing import make_csv_dataset

ROWS = [("a.png", "cybrpnk,  rain, night"), ("b.png", "the same caption"), ("c.png", "the same caption")]


def codes(result):
    return sorted({v.code for v in result})


def test_config_found_walking_up_and_pyproject(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "project" / "data" / "set", ROWS)
    (tmp_path / "project" / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.lorakit.lint]\nignore = ["LK107"]\n', encoding="utf-8")
    result = lora_core.lint(path, registry=registry)
    assert codes(result) == ["LK101"]
    assert result.datasets[0].config.path == tmp_path / "project" / "pyproject.toml"
    (tmp_path / "project" / "data" / "lorakit.toml").write_text('[lint]\nselect = ["LK107"]\n', encoding="utf-8")
    assert codes(lora_core.lint(path, registry=registry)) == ["LK107"]
    assert codes(lora_core.lint(path, registry=registry, isolated=True)) == ["LK101", "LK107"]


def test_explicit_config_overrides_discovery(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "data", ROWS)
    other = tmp_path / "strict.toml"
    other.write_text('[lint]\nselect = ["whitespace"]\n', encoding="utf-8")
    assert codes(lora_core.lint(path, registry=registry, config=other)) == ["LK101"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[lint]\nselct = ["LK"]\n', "unknown key `selct` in [lint] (did you mean `select`?)"),
        ('[lint]\nextend_select = ["LK"]\n', "keys are kebab-case: `extend-select`"),
        ('[lint]\nselect = "LK"\n', "[lint] select must be a list of strings, got string 'LK'"),
        ('[lint]\nseverity = { LK107 = "fatal" }\n', 'must be a table of one of "error", "warning", "info"'),
        ('[dataset]\ncaption-column = 3\n', "[dataset] caption-column must be a string, got integer 3"),
        ('[lintt]\n', "unknown section [lintt] (did you mean `lint`?)"),
        ('[styel]\nrequired = ["x"]\n', "unknown section [styel] (did you mean `style`?)"),
        ('select = ["LK"]\n', "unknown top-level key `select`"),
        ('[lint\n', "invalid TOML"),
        ('[lint]\nselect = ["LK9"]\n', "unknown rule selector 'LK9'"),
        ('[lint]\nseverity = { LK999 = "error" }\n', "unknown rule 'LK999'"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, registry, toml, message):
    path = make_csv_dataset(tmp_path, ROWS)
    (tmp_path / "lorakit.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(lora_core.ConfigError) as info:
        lora_core.lint(path, registry=registry)
    assert message in str(info.value)
    assert str(tmp_path / "lorakit.toml") in str(info.value)


def test_pyproject_errors_use_the_tool_prefix(tmp_path, registry):
    path = make_csv_dataset(tmp_path, ROWS)
    (tmp_path / "pyproject.toml").write_text('[tool.lorakit.lint]\nbogus = 1\n', encoding="utf-8")
    with pytest.raises(lora_core.ConfigError, match=r"unknown key `bogus` in \[tool.lorakit.lint\]"):
        lora_core.lint(path, registry=registry)


@pytest.mark.parametrize(
    ("select", "ignore", "extend", "expected"),
    [
        (["ALL"], [], [], ["LK101", "LK107"]),
        (["LK1"], ["LK107"], [], ["LK101"]),
        (["LK107"], ["LK1"], [], ["LK107"]),  # the more specific selector wins
        (["LK10"], ["LK10"], [], []),  # a tie goes to ignore
        (["duplicate-caption"], [], ["LK101"], ["LK101", "LK107"]),
        (["LK0"], [], [], []),
    ],
)
def test_selection_semantics(lint_rows, select, ignore, extend, expected):
    found = lint_rows(ROWS, select=select, ignore=ignore, extend_select=extend)
    assert sorted({v.code for v in found}) == expected


def test_severity_override_and_per_image_ignores(tmp_path, registry):
    path = make_csv_dataset(tmp_path, ROWS)
    (tmp_path / "lorakit.toml").write_text(
        '[lint]\nseverity = { LK107 = "error", whitespace = "info" }\n'
        'per-image-ignores = { "b.png" = ["LK107"], "*.jpg" = ["LK"] }\n', encoding="utf-8")
    result = lora_core.lint(path, registry=registry)
    assert [(v.code, v.severity.value, v.image) for v in result] == [
        ("LK101", "info", "a.png"), ("LK107", "error", "c.png")]
    assert result.exit_code() == 1


def test_strict_in_config(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, rain; night")])  # LK102, a warning
    assert lora_core.lint(path, registry=registry).exit_code() == 0
    (tmp_path / "lorakit.toml").write_text("[lint]\nstrict = true\n", encoding="utf-8")
    assert lora_core.lint(path, registry=registry).exit_code() == 1


def test_require_plugins_in_config(tmp_path, registry):
    path = make_csv_dataset(tmp_path, ROWS)
    (tmp_path / "lorakit.toml").write_text('require-plugins = ["structure", "acme-rules"]\n', encoding="utf-8")
    with pytest.raises(lora_core.PluginError, match="'acme-rules' is not installed"):
        lora_core.lint(path, registry=registry)


def test_caption_column_and_extra_columns(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", "x", "cybrpnk,  rain, night")], header=("file_name", "note", "prompt"))
    (tmp_path / "lorakit.toml").write_text('[dataset]\ncaption-column = "prompt"\n', encoding="utf-8")
    result = lora_core.lint(path, registry=registry)
    record = result.datasets[0].dataset.records[0]
    assert record.caption == "cybrpnk,  rain, night" and record.extras == {"note": "x"}
    assert [(v.code, v.location.column) for v in result] == [("LK101", 18)]


@pytest.mark.parametrize("toml, message", [
    ('[dataset]\ncaption-column = ""\n', "caption-column: must name a column"),
    ('[dataset]\nimage-column = " "\n', "image-column: must name a column"),
    ('[dataset]\nmodel = "sd9"\n', "unknown model `sd9`"),
])
def test_dataset_keys_that_cannot_work_are_config_errors(tmp_path, registry, toml, message):
    """Issue 23 #15: an empty caption column was a finding (exit 1) instead of a bad config (exit 2)."""
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, rain, night")])
    (tmp_path / "lorakit.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(lora_core.ConfigError, match=message):
        lora_core.lint(path, registry=registry)

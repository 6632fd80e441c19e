"""LK7xx training-config rules point at the line of the config file."""

from __future__ import annotations

TRAIN = """# team config
[lint]
select = ["ALL"]

[train]
epochs = 30
learning-rate = 1e-3
rank = 4
alpha = 64
"""


def test_train_rules_point_at_config_lines(lint_with_config):
    rows = [(f"{i}.png", f"cybrpnk, neon city, view {i}") for i in range(20)]
    result, path = lint_with_config(rows, TRAIN, select=["LK7"])
    found = [(v.code, v.severity.value, v.location.path.name, v.location.line) for v in result]
    assert found == [("LK701", "error", "lorakit.toml", 6), ("LK704", "warning", "lorakit.toml", 6),
                     ("LK702", "warning", "lorakit.toml", 7), ("LK703", "warning", "lorakit.toml", 8),
                     ("LK705", "info", "lorakit.toml", 9)]
    assert "only 20 images and no validation split" in result[0].message


def test_epochs_high_is_a_warning_with_validation(lint_with_config):
    rows = [(f"{i}.png", f"cybrpnk, neon city, view {i}") for i in range(5)]
    config = "[train]\nepochs = 20\nvalidation-split = 0.1\nearly-stopping-patience = 2\n"
    result, _ = lint_with_config(rows, config, select=["LK7"])
    assert [(v.code, v.severity.value) for v in result] == [("LK701", "warning")]


def test_no_train_table_no_train_rules(lint_with_config):
    rows = [("a.png", "cybrpnk, neon city, rain")]
    assert list(lint_with_config(rows, "", select=["LK7"])[0]) == []
    clean = "[train]\nepochs = 10\nlearning-rate = 1.5e-4\nrank = 16\nalpha = 16\n"
    assert list(lint_with_config(rows, clean, select=["LK7"])[0]) == []


def test_pyproject_table(tmp_path, registry):
    import lora_core
    from lora_core.testing import make_csv_dataset

    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, neon city, rain")])
    (tmp_path / "pyproject.toml").write_text('[tool.lorakit.train]\nrank = 2\n', encoding="utf-8")
    (violation,) = [v for v in lora_core.lint(path, registry=registry) if v.code == "LK703"]
    assert (violation.location.path.name, violation.location.line) == ("pyproject.toml", 2)

"""`lorakit init` proposes a valid, commented config from the captions."""

from __future__ import annotations

from click.testing import CliRunner

import lora_core
from lora_core.cli import cli
from lora_core.config import tomllib
from lora_core.testing import make_csv_dataset


def test_init_proposes_trigger_style_prefix_and_identities(tmp_path, registry):
    rows = [(f"{i}.png", f"[style: cyberpunk] zxq9, cyberpunk alley, neon, view {i}") for i in range(6)] + [
        ("p.png", "zxq9, portrait of person_A, watercolor wash"), ("q.png", "city at night with lights")]
    path = make_csv_dataset(tmp_path / "set", rows)
    result = CliRunner().invoke(cli, ["init", str(path.parent)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "set" / "lorakit.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["entities"]["trigger"] == "zxq9"
    assert "cyberpunk" in config["style"]["required"]  # the lexicon group: any spelling of it counts
    assert config["style"]["prefix"] == "[style: cyberpunk]"
    assert config["entities"]["identities"] == ["person_A"]
    assert "# `zxq9` is in 7 of 8 captions and is not a common word" in text
    # the written file is a valid config: lint reads it back and applies it
    found = {v.code for v in lora_core.lint(path, registry=registry)}
    assert {"LK201", "LK305"} <= found


def test_init_refuses_to_overwrite_and_prints_with_stdout(tmp_path):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, neon city, rain")])
    (tmp_path / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["init", str(path)])
    assert refused.exit_code == 1 and "exists; use --force" in refused.output
    assert (tmp_path / "lorakit.toml").read_text() == "[lint]\n"
    shown = CliRunner().invoke(cli, ["init", str(path), "--stdout"])
    assert shown.exit_code == 0 and shown.stdout.startswith("# lorakit configuration for ")
    forced = CliRunner().invoke(cli, ["init", str(path), "--force"])
    assert forced.exit_code == 0 and "[style]" in (tmp_path / "lorakit.toml").read_text()


def test_init_prefers_the_kohya_concept_and_rare_words(tmp_path):
    from lora_core.testing import make_sidecar_dataset

    make_sidecar_dataset(tmp_path / "ds", {
        "10_ohwx/a.png": "ohwx, watercolor fox, snow, forest",
        "10_ohwx/b.png": "ohwx, watercolor fox, river, dusk",
        "10_ohwx/c.png": "ohwx, watercolor fox, night, moon",
        "10_ohwx/d.png": "ohwx, watercolor fox, meadow, noon",
        "10_ohwx/e.png": "ohwx, watercolor fox, den, spring",
        "10_ohwx/f.png": "watercolor fox, rain, autumn",
    })
    shown = CliRunner().invoke(cli, ["init", str(tmp_path / "ds"), "--stdout"])
    config = tomllib.loads(shown.stdout)
    # "fox" and "watercolor" are in every caption but are common CLIP words; "ohwx" is rare
    assert config["entities"]["trigger"] == "ohwx"
    assert "watercolor" in config["style"]["required"]


def test_init_infers_nothing_from_too_few_captions(tmp_path):
    from lora_core.testing import make_sidecar_dataset

    make_sidecar_dataset(tmp_path / "ds", {"a.png": "ohwx, fox, snow", "b.png": "ohwx, fox, river"})
    config = tomllib.loads(CliRunner().invoke(cli, ["init", str(tmp_path / "ds"), "--stdout"]).stdout)
    assert "trigger" not in config["entities"] and "required" not in config["style"]


def test_init_of_the_current_folder_names_it(tmp_path, monkeypatch):
    folder = tmp_path / "neon_set"
    make_csv_dataset(folder, [("a.png", "cybrpnk, neon city, rain")])
    monkeypatch.chdir(folder)
    shown = CliRunner().invoke(cli, ["init", ".", "--stdout"])
    assert shown.stdout.startswith("# lorakit configuration for neon_set, ")  # not "for , " (Path(".").name)

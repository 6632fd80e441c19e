"""kohya sd-scripts' dataset_config.toml linted as the dataset it describes: every subset with its
own settings (caption extension, repeats, class tokens as the concept's trigger, keep_tokens), and
what in the config contradicts the data (LK010)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import lora_core
from lora_core.cli import cli

KOHYA_SET = Path(__file__).resolve().parents[3] / "examples" / "kohya-set"

CONFIG = """\
[general]
shuffle_caption = true
caption_extension = ".txt"
keep_tokens = 1

[[datasets]]
resolution = 512
batch_size = 2

  [[datasets.subsets]]
  image_dir = "10_person_A"
  num_repeats = 10
  class_tokens = "person_A woman"

  [[datasets.subsets]]
  image_dir = "3_person_B"
  num_repeats = 3

  [[datasets.subsets]]
  image_dir = "8_wtrclr_fox"
  num_repeats = 8
  caption_extension = ".caption"
  flip = true
"""


@pytest.fixture
def kohya(tmp_path) -> Path:
    folder = tmp_path / "set"
    shutil.copytree(KOHYA_SET, folder)
    (folder / "dataset_config.toml").write_text(CONFIG, encoding="utf-8")
    return folder / "dataset_config.toml"


def found(path, registry, **kwargs):
    result = lora_core.lint(path, registry=registry, **kwargs)
    assert not result.crashes, [c.describe() for c in result.crashes]
    return result


def test_each_subset_is_read_with_its_own_settings(kohya, registry):
    result = found(kohya, registry)
    lk010 = sorted((v.location.line, v.message) for v in result if v.code == "LK010")
    assert lk010 == [
        (22, "caption_extension `.caption` of [[datasets.subsets]] #3 of dataset #1 matches no file in "
             "`8_wtrclr_fox`: kohya trains its 10 images with no caption; its caption files end in `.txt`"),
        (23, "unknown key `flip` in [[datasets.subsets]] #3 of dataset #1 (kohya refuses the config)"),
    ]
    # the fox subset's .txt files are not its captions (kohya reads .caption there): LK009 per image
    assert sorted(v.image for v in result if v.code == "LK009") == [f"8_wtrclr_fox/f{i:02d}.png" for i in range(1, 11)]
    # class_tokens "person_A woman" make `person_A` that subset's trigger: a03 lacks it
    assert [v.image for v in result if v.code == "LK305"] == ["10_person_A/a03.png"]
    # num_repeats count: 6 x 10 against 3 x 3
    balance = next(v for v in result if v.code == "LK304")
    assert "6 images x 10 = 60" in balance.message and "3 images x 3 = 9" in balance.message


def test_missing_folders_other_subset_kinds_and_unknown_keys(tmp_path, registry):
    config = tmp_path / "dataset_config.toml"
    (tmp_path / "imgs").mkdir()
    config.write_text('[general]\nbogus = 1\n\n[[datasets]]\n\n  [[datasets.subsets]]\n  image_dir = "nowhere"\n\n'
                      '  [[datasets.subsets]]\n  metadata_file = "meta.json"\n  image_dir = "imgs"\n', encoding="utf-8")
    messages = sorted(v.message for v in found(config, registry) if v.code == "LK010")
    assert messages == [
        "[[datasets.subsets]] #2 of dataset #1 is a fine-tuning (metadata_file) subset: lorakit does not read it "
        "(lint its captions directly)",
        "image_dir `nowhere` of [[datasets.subsets]] #1 of dataset #1 does not exist (looked in the current folder "
        "and next to dataset_config.toml)",
        "unknown key `bogus` in [general] (kohya refuses the config)",
    ]


def test_keep_tokens_beyond_the_tags_is_a_warning_and_lorakit_toml_wins(kohya, registry):
    text = kohya.read_text(encoding="utf-8").replace("keep_tokens = 1", "keep_tokens = 9")
    kohya.write_text(text, encoding="utf-8")
    result = found(kohya, registry)
    warning = next(v for v in result if v.code == "LK010" and "keep_tokens" in v.message)
    assert warning.severity.value == "warning" and "keep_tokens = 9" in warning.message
    assert warning.location.line == 4  # [general]'s keep_tokens line
    (kohya.parent / "lorakit.toml").write_text("[entities]\nkeep-tokens = 2\n", encoding="utf-8")
    config = lora_core.api.load_config(kohya, lora_core.api.LintOptions(), registry)
    dataset = lora_core.api.open_dataset(kohya, lora_core.api.dataset_settings(config, lora_core.api.LintOptions()),
                                         registry.readers)
    lora_core.api.apply_dataset_settings(config, dataset)
    assert config.section("entities")["keep-tokens"] == 2  # the lorakit config's own value wins
    assert config.section("entities")["concept-triggers"] == {"person_A": "person_A"}


def test_stats_count_the_configs_repeats_and_config_flag_points_at_lint(kohya):
    stats = CliRunner().invoke(cli, ["stats", str(kohya), "--format", "json", "--no-images"], catch_exceptions=False)
    concepts = json.loads(stats.stdout)["concepts"]
    assert concepts["samples_per_epoch"] == 6 * 10 + 3 * 3  # the fox subset has no .caption captions
    wrong = CliRunner().invoke(cli, ["lint", str(kohya.parent), "--config", str(kohya)])
    assert wrong.exit_code == 2
    assert "a kohya dataset config, not a lorakit config: lint it as the dataset" in wrong.stderr


def test_kohya_ss_and_lora_scripts_training_configs(tmp_path, registry):
    """sd-scripts' arguments saved by kohya_ss (JSON) or as a --config_file / lora-scripts TOML:
    train_data_dir read with the config's caption extension; an embedded dataset_config is read."""
    shutil.copytree(KOHYA_SET, tmp_path / "img")
    gui = tmp_path / "kohya_ss.json"
    gui.write_text(json.dumps({"train_data_dir": "img", "reg_data_dir": "", "caption_extension": ".txt",
                               "keep_tokens": 1, "dataset_config": "", "output_name": "x"}), encoding="utf-8")
    from_gui = found(gui, registry)
    assert len(from_gui.datasets[0].dataset.records) == 19 and not [v for v in from_gui if v.code == "LK009"]
    args = tmp_path / "train.toml"
    args.write_text('[dataset_arguments]\ntrain_data_dir = "img"\ncaption_extension = ".caption"\n'
                    '[training_arguments]\nmax_train_epochs = 10\n', encoding="utf-8")
    assert len([v for v in found(args, registry) if v.code == "LK009"]) == 19  # .caption: no caption trains
    (tmp_path / "dataset_config.toml").write_text(CONFIG.replace('"10_person_A"', '"img/10_person_A"')
                                                  .replace('"3_person_B"', '"img/3_person_B"')
                                                  .replace('"8_wtrclr_fox"', '"img/8_wtrclr_fox"'), encoding="utf-8")
    gui.write_text(json.dumps({"train_data_dir": "", "dataset_config": "dataset_config.toml"}), encoding="utf-8")
    assert any(v.code == "LK010" and "unknown key `flip`" in v.message for v in found(gui, registry))


def test_a_folder_named_twice_is_one_finding_not_a_crash_or_self_duplicates(tmp_path, registry):
    """Regression: a folder named as a subset and as `is_reg` crashed the image rules, and LK107
    and LK605 called each image and caption a copy of itself."""
    from lora_core.testing import write_photo

    (tmp_path / "img").mkdir()
    for name, seed in (("a", "apple"), ("b", "boat"), ("c", "cat")):
        write_photo(tmp_path / "img" / f"{name}.png", seed=seed)
        (tmp_path / "img" / f"{name}.txt").write_text(f"tk, girl, {seed}", encoding="utf-8")
    (tmp_path / "dataset_config.toml").write_text(
        '[general]\ncaption_extension = ".txt"\n[[datasets]]\nresolution = 64\n'
        '[[datasets.subsets]]\nimage_dir = "img"\nnum_repeats = 5\n'
        '[[datasets.subsets]]\nimage_dir = "img"\nis_reg = true\n', encoding="utf-8")
    result = lora_core.lint(tmp_path / "dataset_config.toml", registry=registry, select=["LK0", "LK1", "LK6"])
    assert not result.crashes, [c.describe() for c in result.crashes]
    (finding,) = list(result)
    assert finding.code == "LK006"
    assert "names folder `img` twice" in finding.message and "3 images" in finding.message

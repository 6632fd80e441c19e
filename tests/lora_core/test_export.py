"""`lorakit export --to kohya`: a dataset_config.toml that kohya's schema accepts (its keys and
types, from sd-scripts' library/config_util.py) and that lints back to the same findings."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from lora_core.cli import cli
from lora_core.config import tomllib
from lora_core.datasets.kohya_config import DATASET_KEYS, GENERAL_KEYS, SUBSET_KEYS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def findings(path: Path) -> list[tuple[str, str]]:
    """(code, image) of every finding about a caption or image (messages differ: a trigger the
    config states is no longer "inferred")."""
    result = run("lint", str(path), "--format", "json")
    import json

    return sorted((v["code"], v["image"]) for v in json.loads(result.stdout) if v["image"])


def test_export_a_kohya_set_and_lint_it_back(tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(EXAMPLES / "kohya-set", folder)
    (folder / "lorakit.toml").write_text("[entities]\nkeep-tokens = 1\n[train]\nresolution = 768\n", encoding="utf-8")
    output = folder / "dataset_config.toml"  # beside lorakit.toml: both lints use it
    result = run("export", "--to", "kohya", str(folder), "-o", str(output))
    assert result.exit_code == 0, result.output
    data = tomllib.loads(output.read_text(encoding="utf-8"))
    # kohya's schema: known keys only, at the level they belong to, with kohya's types
    assert set(data) == {"general", "datasets"} and set(data["general"]) <= GENERAL_KEYS
    assert data["general"] == {"caption_extension": ".txt", "keep_tokens": 1}
    (dataset,) = data["datasets"]
    assert set(dataset) - {"subsets"} <= DATASET_KEYS and dataset["resolution"] == 768 and "batch_size" not in dataset
    subsets = {Path(s["image_dir"]).name: s for s in dataset["subsets"]}
    assert all(set(s) <= SUBSET_KEYS and isinstance(s["num_repeats"], int) for s in subsets.values())
    assert {name: s["num_repeats"] for name, s in subsets.items()} == {"10_person_A": 10, "3_person_B": 3,
                                                                     "8_wtrclr_fox": 8}
    assert subsets["8_wtrclr_fox"]["class_tokens"] == "wtrclr"  # the concept's inferred trigger
    assert all(Path(s["image_dir"]).is_absolute() for s in subsets.values())  # kohya opens them from anywhere
    # read back: the same captions, the same findings, nothing about the config itself
    assert findings(output) == findings(folder)
    assert "LK010" not in run("lint", str(output), "--format", "concise").stdout


def test_a_metadata_csv_dataset_is_refused_with_a_reason(tmp_path):
    result = run("export", "--to", "kohya", str(EXAMPLES / "cyberpunk"))
    assert result.exit_code == 2
    assert "kohya's DreamBooth datasets read caption files beside the images; this is a csv dataset" in result.stderr

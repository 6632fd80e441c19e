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


def test_export_to_ai_toolkit_and_lint_it_back(tmp_path):
    import yaml

    from lora_core.datasets.aitoolkit_config import DATASET_KEYS as AITOOLKIT_KEYS

    folder = tmp_path / "set"
    shutil.copytree(EXAMPLES / "kohya-set", folder)
    output = folder / "train.yaml"
    assert run("export", "--to", "ai-toolkit", str(folder), "-o", str(output)).exit_code == 0
    job = yaml.safe_load(output.read_text(encoding="utf-8"))
    (process,) = job["config"]["process"]
    entries = {Path(d["folder_path"]).name: d for d in process["datasets"]}
    assert all(set(d) <= AITOOLKIT_KEYS for d in entries.values())  # ai-toolkit's DatasetConfig keys
    assert {name: d["num_repeats"] for name, d in entries.items()} == {"10_person_A": 10, "3_person_B": 3,
                                                                     "8_wtrclr_fox": 8}
    # only the fox folder has a trigger: ai-toolkit would insert a process-level one everywhere
    assert "trigger_word" not in process and entries["8_wtrclr_fox"]["trigger_word"] == "wtrclr"
    assert "trigger_word" not in entries["10_person_A"]
    # read back: the same findings, but "trigger missing" (ai-toolkit inserts it); the typo stays
    expected = [f for f in findings(folder) if f[0] != "LK305"]
    assert findings(output) == expected and ("LK307", "8_wtrclr_fox/f04.png") in expected


def test_a_csv_dataset_becomes_sidecars_then_a_kohya_config(tmp_path):
    """Issue 24 #15: the working path from metadata.csv to a kohya set: `export --to sidecars`
    (captions verbatim, no file for an uncaptioned image, nothing overwritten), then `--to kohya`."""
    folder = tmp_path / "demo"
    shutil.copytree(EXAMPLES / "cyberpunk", folder, ignore=shutil.ignore_patterns(".lorakit_cache"))
    refused = run("export", "--to", "kohya", str(folder / "metadata.csv"))
    assert f"`lorakit export --to sidecars {folder / 'metadata.csv'}`" in refused.stderr
    import csv

    with (folder / "metadata.csv").open(encoding="utf-8", newline="") as handle:
        rows = {row["file_name"]: row["text"] for row in csv.DictReader(handle)}
    written = run("export", "--to", "sidecars", str(folder / "metadata.csv"))
    assert written.exit_code == 0, written.output
    assert "wrote 11 caption files (.txt); 1 image without a caption got no file (e.g. `drone.png`)" in written.stderr
    for image, caption in rows.items():
        sidecar = folder / Path(image).with_suffix(".txt")
        assert not (folder / image).exists() or sidecar.read_text(encoding="utf-8") == caption + "\n"
    assert not (folder / "drone.txt").exists()
    again = run("export", "--to", "sidecars", str(folder / "metadata.csv"))
    assert again.exit_code == 0 and "wrote 0 caption files (.txt); 11 unchanged" in again.stderr
    (folder / "rooftop.txt").write_text("edited by hand\n", encoding="utf-8")
    kept = run("export", "--to", "sidecars", str(folder / "metadata.csv"))
    assert kept.exit_code == 2 and "rooftop.txt: exists with another caption: pass --overwrite" in kept.stderr
    assert (folder / "rooftop.txt").read_text(encoding="utf-8") == "edited by hand\n"
    (folder / "metadata.csv").rename(tmp_path / "metadata.csv")
    assert run("export", "--to", "kohya", str(folder), "-o", str(tmp_path / "dataset_config.toml")).exit_code == 0


def test_caption_csv_to_sidecars_keeps_human_wording_and_writes_no_empty_file(tmp_path):
    """Issue 24 #15: `caption --captioner csv --output sidecars` reworded human captions with the
    unsafe post-fixes ("machine" -> the set's phrase) and wrote an empty file for drone.png."""
    folder = tmp_path / "demo"
    shutil.copytree(EXAMPLES / "cyberpunk", folder, ignore=shutil.ignore_patterns(".lorakit_cache"))
    result = run("caption", str(folder), "--captioner", "csv", "--model", str(folder / "metadata.csv"),
                 "--output", "sidecars")
    assert result.exit_code in (0, 1), result.output
    assert not (folder / "drone.txt").exists()
    machine = (folder / "machine.txt").read_text(encoding="utf-8")
    assert "machine" in machine and "steampunk gear device" not in machine

"""OneTrainer concepts and SimpleTuner data backends linted as the datasets they describe: each
folder with its repeats, the trainers' own caption rules (prompt_source, caption_strategy and
SimpleTuner's `filename` default), and LK010 for what contradicts the data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import lora_core

KOHYA_SET = Path(__file__).resolve().parents[3] / "examples" / "kohya-set"


@pytest.fixture
def folders(tmp_path) -> Path:
    shutil.copytree(KOHYA_SET / "8_wtrclr_fox", tmp_path / "fox")
    shutil.copytree(KOHYA_SET / "10_person_A", tmp_path / "person")
    return tmp_path


def lint(path, registry):
    result = lora_core.lint(path, registry=registry)
    assert not result.crashes, [c.describe() for c in result.crashes]
    return result


def test_onetrainer_concepts(folders, registry):
    concepts = [
        {"name": "fox", "path": "fox", "balancing": 8.0, "balancing_strategy": "REPEATS",
         "text": {"prompt_source": "sample", "enable_tag_shuffling": True, "keep_tags_count": 9}},
        {"name": "person", "path": "person", "balancing": 60, "balancing_strategy": "SAMPLES", "repeat": 3},
        {"name": "names", "path": "fox", "text": {"prompt_source": "filename"}},
        {"name": "off", "path": "nowhere", "enabled": False},
        {"name": "gone", "path": "nowhere"},
    ]
    path = folders / "concepts.json"
    path.write_text(json.dumps({"concepts": concepts}, indent=1), encoding="utf-8")  # a training config's list
    result = lint(path, registry)
    lk010 = sorted((v.severity.value, v.message) for v in result if v.code == "LK010")
    assert lk010 == [
        ("error", "path `nowhere` of concept #5 (gone) does not exist"),
        ("info", "concept #3 (names) takes its captions from its file names (prompt_source = filename), not from "
                 "caption files: not linted"),
        ("warning", "`repeat` in concept #2 (person) is not a key OneTrainer reads (it ignores it)"),
        ("warning", "keep_tags_count = 9 in concept #1 (fox), but 10 of its captions have fewer tags: nothing "
                    "shuffles in them"),
    ]
    (dataset,) = [item.dataset for item in result.datasets]
    repeats = {r.image.split("/")[0]: r.repeats for r in dataset.records}
    assert repeats == {"fox": 8, "person": 10}  # 60 samples per epoch over 6 images


def test_simpletuner_backends(folders, registry):
    backends = [
        {"id": "fox", "type": "local", "instance_data_dir": "fox", "repeats": 7, "instance_prompt": "wtrclr",
         "prepend_instance_prompt": True, "caption_strategy": "textfile"},
        {"id": "person", "type": "local", "instance_data_dir": "person", "resolution": 512, "crop_styl": "center"},
        {"id": "text-embeds", "dataset_type": "text_embeds", "default": True, "type": "local", "cache_dir": "c"},
    ]
    path = folders / "multidatabackend.json"
    path.write_text(json.dumps(backends, indent=1), encoding="utf-8")
    result = lint(path, registry)
    lk010 = sorted((v.severity.value, v.message) for v in result if v.code == "LK010")
    assert lk010 == [
        ("error", "backend `person` sets no caption_strategy: SimpleTuner then uses its --caption_strategy, whose "
                  "default is `filename`, and the 6 `.txt` captions in `person` do not train (set "
                  '"caption_strategy": "textfile")'),
        ("warning", "`crop_styl` in backend `person` is not a key SimpleTuner reads (a typo trains with the default)"),
    ]
    (dataset,) = [item.dataset for item in result.datasets]
    assert {r.repeats for r in dataset.records if r.image.startswith("fox/")} == {8}  # 7 extra passes
    # instance_prompt prepended: the trigger is inserted, so "missing" is moot; its typo is not
    assert not [v for v in result if v.code == "LK305"]
    assert [v.image for v in result if v.code == "LK307"] == ["fox/f04.png"]


def test_other_json_is_not_a_trainer_config(tmp_path, registry):
    path = tmp_path / "notes.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    with pytest.raises(lora_core.DatasetError, match="not a dataset"):
        lora_core.lint(path, registry=registry)

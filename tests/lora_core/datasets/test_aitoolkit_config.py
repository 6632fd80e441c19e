"""ai-toolkit's YAML job config linted as the dataset it describes: folder_path entries with their
own caption_ext and num_repeats, its trigger semantics (the trigger is inserted by ai-toolkit, and
[trigger] stands for it), and what the config gets wrong (LK010)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lora_core

pytest.importorskip("yaml")
KOHYA_SET = Path(__file__).resolve().parents[3] / "examples" / "kohya-set"

CONFIG = """\
job: extension
config:
  name: "fox_lora"
  process:
    - type: 'sd_trainer'
      trigger_word: "wtrclr"
      datasets:
        - folder_path: "fox"
          caption_ext: "txt"
          num_repeats: 4
          resolution: [ 512, 768 ]
        - folder_path: "person"
          caption_extension: "txt"
          is_reg: true
        - folder_path: "missing_folder"
"""


@pytest.fixture
def job(tmp_path) -> Path:
    shutil.copytree(KOHYA_SET / "8_wtrclr_fox", tmp_path / "fox")
    shutil.copytree(KOHYA_SET / "10_person_A", tmp_path / "person")
    first = tmp_path / "fox" / "f01.txt"
    first.write_text(first.read_text(encoding="utf-8").replace("wtrclr, ", "[trigger], "), encoding="utf-8")
    (tmp_path / "train.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path / "train.yaml"


def test_entries_read_with_their_settings_and_the_trigger_semantics(job, registry):
    result = lora_core.lint(job, registry=registry)
    assert not result.crashes
    lk010 = sorted((v.location.line, v.severity.value, v.message) for v in result if v.code == "LK010")
    assert lk010 == [
        (13, "warning", "`caption_extension` in datasets entry #2 is not a key ai-toolkit reads (it ignores it "
                        "silently: a typo trains with the default)"),
        (15, "error", "folder_path `missing_folder` of datasets entry #3 does not exist"),
    ]
    # ai-toolkit inserts the trigger itself: no "trigger missing", and [trigger] is not a prefix
    assert not [v for v in result if v.code in ("LK305", "LK306", "LK202")]
    (dataset,) = [item.dataset for item in result.datasets]
    fox = [r for r in dataset.records if r.image.startswith("fox/")]
    assert {r.repeats for r in fox} == {4} and fox[0].caption.startswith("wtrclr, ")


def test_placeholder_without_a_trigger_word_and_default_captions(job, registry):
    text = job.read_text(encoding="utf-8").replace('      trigger_word: "wtrclr"\n', "")
    text = text.replace('          num_repeats: 4\n', '          num_repeats: 4\n          default_caption: "a fox"\n')
    job.write_text(text, encoding="utf-8")
    (job.parent / "fox" / "f02.txt").unlink()
    result = lora_core.lint(job, registry=registry)
    messages = {v.severity.value: v.message for v in result
                if v.code == "LK010" and ("[trigger]" in v.message or "default_caption" in v.message)}
    assert "1 captions in `fox` use [trigger] (e.g. `fox/f01.png`) but no trigger_word is set" in messages["error"]
    assert messages["info"].startswith("1 images in `fox` have no `.txt` file and train with default_caption")
    assert "fox/f02.png" not in {v.image for v in result if v.code == "LK002"}


@pytest.mark.parametrize("name, text, message", [
    ("job.yaml", "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)) + "trigger_word: *l9\n",
     "its aliases expand to 8,335,593,9[0-9]+ nodes"),
    ("job.yaml", "config: !!python/object/apply:os.system [echo hi]\n", "uses a tag lorakit never constructs"),
    ("job.yaml", "config:\n  process: [\n", "not valid YAML: "),
    ("job.yaml", "a: 1\n---\nb: 2\n", "holds 2 YAML documents"),
    ("dataset_config.toml", '[[datasets]]\nimage_dir = "a"\nimage_dir = "b"\n', "not valid TOML: Cannot overwrite"),
    ("kohya.json", '{"train_data_dir": "img",', "not valid JSON: Expecting property name"),
])
def test_a_trainer_config_that_does_not_parse_says_why(tmp_path, registry, name, text, message):
    """Issue 23 #4-#5: a YAML alias bomb never finished; a config that does not parse was "not a dataset"."""
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(lora_core.DatasetError, match=message):
        lora_core.lint(tmp_path / name, registry=registry)

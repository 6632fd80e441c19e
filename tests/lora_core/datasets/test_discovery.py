"""Dataset discovery goes through the readers: a file that is part of a dataset (an image, a
caption, a lorakit.toml) stands for the dataset a reader says it belongs to, third-party
readers included."""

from __future__ import annotations

import types

import lora_core
from lora_core import hookimpl
from lora_core.api import dataset_targets
from lora_core.datasets.csv_reader import CsvReader
from lora_core.testing import make_csv_dataset, registry_with


class CaptionsCsvReader(CsvReader):
    """A third party's format: the same CSV under another name (`captions.csv`)."""

    name = "captions-csv"
    description = "captions.csv (a made-up format for the test)"
    filename = "captions.csv"
    priority = 20


@hookimpl
def register_readers(register):
    register(CaptionsCsvReader())


def third_party_registry():
    return registry_with(types.SimpleNamespace(register_readers=register_readers), names=["captions-csv"])


def test_a_third_party_reader_takes_part_in_discovery(tmp_path):
    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox in snow"), ("b.png", "a fox")])
    folder = metadata.parent
    metadata.rename(folder / "captions.csv")
    (folder / "a.txt").write_text("stray sidecar", encoding="utf-8")
    (folder / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    registry = third_party_registry()
    targets, skipped = dataset_targets([folder / "a.png", folder / "lorakit.toml", folder / "a.txt"],
                                       registry.readers)
    assert [t.resolve() for t in targets] == [folder.resolve()]
    assert skipped == [folder / "a.txt"]  # placed by the sidecar reader, but the folder is captions.csv's
    result = lora_core.lint(folder / "a.png", registry=registry)
    assert result.datasets[0].dataset.format == "captions-csv"
    assert len(result.datasets[0].dataset.records) == 2


def test_without_that_reader_the_same_files_are_not_its_dataset(tmp_path, registry):
    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox in snow")])
    metadata.rename(metadata.parent / "captions.csv")
    targets, skipped = dataset_targets([metadata.parent / "a.png"], registry.readers)
    assert targets == [] and skipped == [metadata.parent / "a.png"]  # no captions beside it: not training data


def test_both_imagefolder_metadata_files_are_refused_by_the_reader(tmp_path, registry):
    import pytest

    from lora_core.errors import DatasetError

    metadata = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox")])
    (metadata.parent / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "a fox"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="holds both metadata.csv and metadata.jsonl"):
        lora_core.lint(metadata.parent, registry=registry)

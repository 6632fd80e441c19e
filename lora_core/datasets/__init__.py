"""Datasets: the model (records, files, problems), the reader interface and the built-in readers."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_core.datasets.model import Dataset, ReadProblem, Record, SourceFile
from lora_core.datasets.reader import DatasetReader, DatasetSettings, os_error
from lora_core.errors import DatasetError

__all__ = [
    "Dataset",
    "DatasetReader",
    "DatasetSettings",
    "ReadProblem",
    "Record",
    "SourceFile",
    "open_dataset",
    "by_priority",
    "call_reader",
    "check_dataset_path",
]


def check_dataset_path(path: Path) -> None:
    """Refuse paths that cannot be a dataset, with a message that says what was expected."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise os_error(path, exc, "access") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise DatasetError(f"{path}: not a regular file or folder")


def by_priority(readers: Sequence[DatasetReader]) -> list[DatasetReader]:
    """Readers in the order they are asked: highest priority first (ties keep their order)."""
    return sorted(readers, key=lambda r: -r.priority)


def open_dataset(path: Path, settings: DatasetSettings, readers: Sequence[DatasetReader]) -> Dataset:
    """Read `path` with the highest-priority reader that claims it."""
    check_dataset_path(path)
    for reader in by_priority(readers):
        if call_reader(reader, "claims", path):
            dataset: Dataset = call_reader(reader, "read", path, settings)
            return dataset
    raise DatasetError(
        f"{path}: not a dataset (expected a metadata.csv, a metadata.jsonl, a caption sidecar "
        "such as img.txt, or a folder of images)"
    )


def call_reader(reader: DatasetReader, method: str, *args: Any) -> Any:
    """A reader's claims(), dataset_for() or read(); what a plugin's reader raises (other than lorakit's own
    one-line errors) is reported against that plugin, never as an internal error."""
    from lora_core.errors import LorakitError, PluginError

    try:
        return getattr(reader, method)(*args)
    except (LorakitError, RecursionError, MemoryError):
        raise
    except Exception as exc:
        plugin = getattr(reader, "plugin", "core")  # set by the registry when the reader was registered
        if plugin == "core":
            raise  # lorakit's own readers: a bug of ours, shown as one
        raise PluginError(f"dataset reader {reader.name!r} of plugin {plugin!r} failed in {method}() on "
                          f"{args[0]}: {type(exc).__name__}: {exc}") from None

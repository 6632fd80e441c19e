"""Datasets: the model (records, files, problems), the reader interface and the built-in readers."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_core.datasets.model import TRAINER_CONFIG_SUFFIXES, Dataset, ReadProblem, Record, SourceFile
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
    why = config_parse_error(path)
    if why is not None:  # a trainer config that does not parse: say where, not "not a dataset"
        raise DatasetError(f"{path}: {why}")
    raise DatasetError(
        f"{path}: not a dataset (expected a metadata.csv, a metadata.jsonl, a caption sidecar "
        "such as img.txt, or a folder of images)"
    )


def config_parse_error(path: Path) -> str | None:
    """Why a TOML, YAML or JSON file (a trainer config, by its suffix) does not parse, with the
    line; None when it parses or is something else."""
    suffix = path.suffix.lower()
    if suffix not in TRAINER_CONFIG_SUFFIXES or not path.is_file():
        return None
    from lora_core.datasets.reader import read_bytes

    try:
        text = read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start})"
    except DatasetError as exc:
        return str(exc).split(": ", 1)[-1]
    if suffix == ".toml":
        import sys

        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            return f"not valid TOML: {exc}"
        except RecursionError:
            return "not valid TOML: nested too deeply"
        return None
    if suffix == ".json":
        import json

        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            return f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        except (RecursionError, ValueError):
            return "not valid JSON: nested too deeply or a number too long"
        return None
    from lora_core.datasets.aitoolkit_config import yaml_problem

    return yaml_problem(text)


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

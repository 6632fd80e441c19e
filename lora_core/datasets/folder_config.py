"""What the readers of trainers' own dataset configs share (kohya, ai-toolkit, OneTrainer,
SimpleTuner: lora_core/datasets/kohya_config.py, aitoolkit_config.py, trainer_json.py). Each such
config names image folders with caption sidecars; a reader reads every folder with the sidecar
reader and merges them into one dataset rooted at the config's folder, records named
`<folder>/<image>`, and writes fixes back through the sidecar reader.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lora_core.datasets.model import Dataset
from lora_core.datasets.reader import DatasetReader, DatasetSettings
from lora_core.datasets.sidecar_reader import SidecarReader
from lora_core.errors import DatasetError
from lora_core.violations import Location


class FolderConfigReader(DatasetReader):
    """Base of the trainer-config readers: an empty dataset to merge folders into, and the
    sidecar reader's rendering of fixed captions."""

    priority = 50

    def empty_dataset(self, path: Path) -> Dataset:
        return Dataset(root=path.parent, path=path, format=self.name, records=[], sources=[], problems=[],
                       caption_column="", reader=self)

    def render(self, dataset: Dataset, file_changes: dict[Path, set[str]]) -> dict[Path, bytes]:
        return SidecarReader().render(dataset, file_changes)


def read_folder(folder: Path, caption_extension: str) -> Dataset:
    """One image folder of a trainer config, read as the sidecar reader reads a dataset."""
    return SidecarReader().read(folder, DatasetSettings(caption_extension=caption_extension))


def number_value(value: Any, key: str, where: str, minimum: float = 0, whole: bool = True) -> Any:
    """A number read from a trainer config, checked: a whole (or any finite) number at least
    `minimum`, else `WHERE: KEY must be ...` as a DatasetError (exit 2). TOML, YAML and JSON give
    strings, lists, booleans, inf and nan as readily as numbers; trainers crash on them later."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and (not whole or value.is_integer())
    if not ok or value < minimum:
        kind = "a whole number" if whole else "a number"
        shown = repr(value) if not isinstance(value, (list, dict)) else type(value).__name__
        raise DatasetError(f"{where}: {key} must be {kind} >= {minimum:g}, not {shown[:40]}")
    return int(value) if whole else float(value)


def line_of(path: Path, lines: list[str], needle: str, after: int = 0) -> Location:
    """The first line after line `after` that mentions `needle` (JSON, YAML and TOML parsers keep
    no positions), else line `after` itself."""
    for number in range(after + 1, len(lines) + 1):
        if needle in lines[number - 1]:
            return Location(path, number, lines[number - 1].index(needle) + 1)
    return Location(path, max(1, after), 1)


def resolve_path(raw: str, config_folder: Path, is_kind: Any = Path.is_dir) -> Path | None:
    """Trainers open a relative path from where they run; lorakit tries there, then beside the
    config. `is_kind`: what the path must be (a folder; `Path.is_file` for a config file)."""
    candidate = Path(raw).expanduser()
    for path in ((candidate,) if candidate.is_absolute() else (Path.cwd() / candidate, config_folder / candidate)):
        if is_kind(path):
            return path
    return None


def folder_label(image_dir: Path, base: Path, taken: set[str]) -> str:
    """A folder as records name it: relative to the config's folder when inside it."""
    try:
        label = image_dir.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        label = image_dir.name
    unique, n = label, 2
    while unique in taken:
        unique, n = f"{label}~{n}", n + 1
    taken.add(unique)
    return unique


def concept_name(folder_name: str) -> str:
    """A folder's concept: its name without kohya's `N_` repeats."""
    head, _, tail = folder_name.partition("_")
    return tail if head.isdigit() and tail else folder_name


def merge_folder(dataset: Dataset, part: Dataset, label: str, concept: str | None = None,
                 repeats: int | None = None) -> None:
    """Add a folder's records, sources, problems and images to `dataset`, named `<label>/...`;
    with `concept` and `repeats` the config's, else the folder's own (kohya `N_name` folders)."""
    prefix = "" if label == "." else label + "/"
    for record in part.records:
        record.index = len(dataset.records)
        record.image = prefix + (record.image or "")
        if concept is not None:
            record.concept, record.repeats = concept, repeats
        dataset.records.append(record)
    dataset.sources.extend(part.sources)
    dataset.problems.extend(replace(item, image=prefix + item.image) if item.image else item for item in part.problems)
    dataset.images_on_disk.update(prefix + name for name in part.images_on_disk)

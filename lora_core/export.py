"""`lorakit export --to kohya`: a kohya sd-scripts `dataset_config.toml` for a lorakit dataset, so
lint passes first and the user trains with the tool they know.

One `[[datasets.subsets]]` per image folder: each kohya `N_name` folder with `num_repeats = N`
(else the dataset folder, `num_repeats = 1`), the caption extension lorakit read, the concept's
trigger as `class_tokens` (kohya uses them for images without a caption file), `keep_tokens` from
`[entities] keep-tokens`, and `resolution` / `batch_size` from `[train]`, each only when the
config sets it (kohya has its own defaults). image_dir paths
are absolute (kohya opens them relative to where it runs). Only sidecar datasets: kohya's
DreamBooth mode reads caption files beside the images, not metadata.csv. Keys are kohya's own
(library/config_util.py); `lorakit lint` on the written file reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.config import Config
from lora_core.datasets.model import Dataset
from lora_core.errors import DatasetError

FORMATS = ("kohya", "ai-toolkit", "sidecars")


def _scalar(value: Any) -> str:
    """A value as TOML and YAML both write it (their basic strings are JSON strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string is a JSON string


def image_folders(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """{absolute folder: {repeats, concept, extension}} of the dataset's captioned images."""
    folders: dict[str, dict[str, Any]] = {}
    for record in dataset.records:
        if not record.image_path:
            continue
        folder = str(Path(record.image_path).parent.resolve().as_posix())
        entry = folders.setdefault(folder, {"repeats": record.repeats or 1, "concept": record.concept or "",
                                            "extension": Path(record.source.path).suffix if record.source else ".txt"})
        entry["repeats"] = record.repeats or entry["repeats"]
    if not folders:
        raise DatasetError(f"{dataset.path}: no captioned image to export")
    return folders


def folder_triggers(folders: dict[str, dict[str, Any]], triggers: dict[str, str]) -> dict[str, str]:
    """{folder: its trigger, or ""}: the folder's concept's trigger, else the dataset's (key "")."""
    return {folder: triggers.get(entry["concept"]) or triggers.get("") or "" for folder, entry in folders.items()}


def kohya_dataset_config(dataset: Dataset, config: Config, triggers: dict[str, str] | None = None) -> str:
    """The text of a kohya dataset_config.toml describing `dataset`. `triggers`: concept (or
    "" for the whole dataset) -> trigger, written as class_tokens."""
    if dataset.format not in ("sidecar", "kohya-config"):
        raise DatasetError(f"{dataset.path}: kohya's DreamBooth datasets read caption files beside the images; "
                           f"this is a {dataset.format} dataset (write its captions as sidecar files first: "
                           f"`lorakit export --to sidecars {dataset.path}`)")
    triggers = triggers or {}
    folders = image_folders(dataset)
    entities, train = config.section("entities"), config.section("train") if "train" in config.sections else {}
    lines = [f"# kohya sd-scripts dataset config for {dataset.path}, written by `lorakit export --to kohya`.",
             "# Train with: accelerate launch train_network.py --dataset_config <this file> ...", "", "[general]"]
    extensions = {entry["extension"] for entry in folders.values()}
    if len(extensions) == 1:  # else each subset says its own
        lines.append(f"caption_extension = {_scalar(next(iter(extensions)))}")
    keep = entities.get("keep-tokens")
    if "entities.keep-tokens" in config.present and isinstance(keep, int) and keep > 0:
        lines.append(f"keep_tokens = {keep}")
    lines += ["", "[[datasets]]"]
    for key, kohya_key in (("resolution", "resolution"), ("batch-size", "batch_size")):
        if f"train.{key}" in config.present and train.get(key):  # only what the user chose; kohya has defaults
            lines.append(f"{kohya_key} = {int(train[key])}")
    trigger_of = folder_triggers(folders, triggers)
    for folder, entry in sorted(folders.items()):
        lines += ["", "  [[datasets.subsets]]", f"  image_dir = {_scalar(folder)}",
                  f"  num_repeats = {int(entry['repeats'])}"]
        if len(extensions) > 1:
            lines.append(f"  caption_extension = {_scalar(entry['extension'])}")
        if trigger_of[folder]:
            lines.append(f"  class_tokens = {_scalar(trigger_of[folder])}")
    return "\n".join(lines) + "\n"


def aitoolkit_datasets(dataset: Dataset, config: Config, triggers: dict[str, str] | None = None) -> str:
    """A YAML job config for ai-toolkit with `datasets:` entries describing `dataset` (one per
    image folder: folder_path, caption_ext, num_repeats) and the trigger as `trigger_word`; the
    rest of a job (model, network, train) is the user's, as in ai-toolkit's own examples."""
    if dataset.format not in ("sidecar", "kohya-config", "ai-toolkit-config"):
        raise DatasetError(f"{dataset.path}: ai-toolkit datasets are folders of images with caption files; this "
                           f"is a {dataset.format} dataset (write its captions as sidecar files first: "
                           f"`lorakit export --to sidecars {dataset.path}`)")
    triggers = triggers or {}
    folders = image_folders(dataset)
    own = folder_triggers(folders, triggers)
    shared = set(own.values())  # one trigger for every folder: the process's; else each folder its own
    lines = [f"# ai-toolkit job config for {dataset.path}, written by `lorakit export --to ai-toolkit`.",
             "# Add model, network, train and sample sections (ai-toolkit's config/examples), then:",
             "#   python run.py <this file>", "job: extension", "config:",
             f"  name: {_scalar(dataset.root.resolve().name or 'lora')}", "  process:", "    - type: 'sd_trainer'"]
    if len(shared) == 1 and "" not in shared:
        lines.append(f"      trigger_word: {_scalar(shared.pop())}")
        own = {}
    lines.append("      datasets:")
    for folder, entry in sorted(folders.items()):
        lines += [f"        - folder_path: {_scalar(folder)}",
                  f"          caption_ext: {_scalar(entry['extension'].lstrip('.'))}",
                  f"          num_repeats: {int(entry['repeats'])}"]
        if own.get(folder):  # ai-toolkit inserts it into every caption of this folder
            lines.append(f"          trigger_word: {_scalar(own[folder])}")
    return "\n".join(lines) + "\n"


@dataclass
class SidecarPlan:
    """What `export --to sidecars` writes: {sidecar path: bytes}, and what it leaves alone."""

    writes: dict[Path, bytes] = field(default_factory=dict)
    unchanged: int = 0
    uncaptioned: list[str] = field(default_factory=list)  # images with no caption: no file is written
    missing: list[str] = field(default_factory=list)  # rows whose image does not exist


def sidecar_plan(dataset: Dataset, extension: str, overwrite: bool = False) -> SidecarPlan:
    """Each captioned image's caption as a sidecar file beside it (`img.png` -> `img.txt`), the
    caption verbatim (no fix applied: lint what you exported). Refused, with nothing written: an
    image with two different captions (a sidecar holds one), an image outside the dataset folder,
    and an existing sidecar with other text unless `overwrite`."""
    import os

    plan = SidecarPlan()
    root = os.path.realpath(dataset.root)
    captions: dict[str, tuple[str, int]] = {}
    for record in dataset.records:
        if not record.image or not record.image_path:
            continue
        if not record.image_exists:
            plan.missing.append(record.image)
            continue
        caption = record.caption
        if caption is None or not caption.strip():
            plan.uncaptioned.append(record.image)
            continue
        image_path = os.path.realpath(record.image_path)
        if os.path.commonpath([root, image_path]) != root:
            raise DatasetError(f"{dataset.path}: image `{record.image}` is outside the dataset folder: no sidecar is "
                               "written outside it")
        earlier = captions.get(image_path)
        if earlier is not None and earlier[0] != caption:
            raise DatasetError(f"{dataset.path}: image `{record.image}` has two captions (entries {earlier[1]} and "
                               f"{record.index + 1}): a sidecar holds one; merge them first (nothing was written)")
        captions[image_path] = (caption, record.index + 1)
    listed = {record.image for record in dataset.records}
    plan.uncaptioned += sorted(name for name in dataset.images_on_disk if name not in listed)
    for image_path, (caption, _) in sorted(captions.items()):
        target = Path(os.path.splitext(image_path)[0] + extension)
        data = (caption + "\n").encode("utf-8", "surrogateescape")
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise DatasetError(f"{target}: exists and is not a regular file: nothing was written")
        if target.exists():
            if target.read_bytes() in (data, data[:-1]):
                plan.unchanged += 1
                continue
            if not overwrite:
                raise DatasetError(f"{target}: exists with another caption: pass --overwrite to replace it (nothing "
                                   "was written)")
        plan.writes[target] = data
    if not captions:
        raise DatasetError(f"{dataset.path}: no captioned image to export")
    return plan

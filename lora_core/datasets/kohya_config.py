"""kohya sd-scripts' `dataset_config.toml` (`[general]`, `[[datasets]]`, `[[datasets.subsets]]`),
read as one dataset: every DreamBooth-style subset's `image_dir` with its own caption extension,
its `num_repeats` as the records' kohya repeats (balance checks and stats count them), and its
folder as the concept (inference scopes, per-concept triggers).

Settings fall back subset -> dataset -> `[general]` -> kohya's own defaults, as kohya resolves
them (library/config_util.py). What the config says that lorakit also checks becomes config:
`class_tokens` (first word) is the subset's trigger (`[entities] concept-triggers`), one
`keep_tokens` for every subset is `[entities] keep-tokens`; a lorakit.toml that sets the same key
wins. Unknown keys (kohya refuses them), an `image_dir` that does not exist, a `caption_extension`
no caption file has, and `keep_tokens` larger than the captions' tag count are findings (LK010).
Fine-tuning subsets (`metadata_file`) and ControlNet subsets are reported as not read.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lora_core.datasets.folder_config import (
    FolderConfigReader,
    concept_name,
    folder_label,
    line_of,
    merge_folder,
    number_value,
    read_folder,
    resolve_path,
)
from lora_core.datasets.model import Dataset, ReadProblem
from lora_core.datasets.reader import DatasetSettings, read_bytes
from lora_core.errors import DatasetError
from lora_core.toolkit.models import model_from_path, model_from_trainer, model_named
from lora_core.violations import Location

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# kohya's schema (library/config_util.py, ConfigSanitizer), by where a key may appear.
SUBSET_KEYS = frozenset({
    "color_aug", "face_crop_aug_range", "flip_aug", "num_repeats", "random_crop", "shuffle_caption", "keep_tokens",
    "keep_tokens_separator", "secondary_separator", "enable_wildcard", "token_warmup_min", "token_warmup_step",
    "caption_prefix", "caption_suffix", "caption_dropout_every_n_epochs", "caption_dropout_rate",
    "caption_tag_dropout_rate", "caption_extension", "class_tokens", "cache_info", "image_dir", "is_reg",
    "metadata_file", "conditioning_data_dir", "alpha_mask", "custom_attributes", "resize_interpolation",
})
DATASET_KEYS = frozenset({
    "batch_size", "bucket_no_upscale", "bucket_reso_steps", "enable_bucket", "max_bucket_reso", "min_bucket_reso",
    "resolution", "network_multiplier", "validation_seed", "validation_split",
}) | (SUBSET_KEYS - {"image_dir", "is_reg", "metadata_file", "conditioning_data_dir"})
GENERAL_KEYS = DATASET_KEYS
KOHYA_CAPTION_EXTENSION = ".caption"  # kohya's default when no level sets one


def is_kohya_dataset_config(path: Path) -> bool:
    """A TOML file with `[[datasets]]` (kohya's dataset config), and not a lorakit config."""
    if not path.is_file() or path.suffix.lower() != ".toml":
        return False
    try:
        data = tomllib.loads(read_bytes(path).decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, DatasetError, RecursionError, ValueError):
        return False  # not kohya's (the lorakit config reader says what is wrong with it, if anything)
    return isinstance(data.get("datasets"), list)


class KohyaConfigReader(FolderConfigReader):
    name = "kohya-config"
    description = "kohya sd-scripts dataset_config.toml: every subset's image_dir with its own settings"
    what = "a kohya dataset config"

    def claims(self, path: Path) -> bool:
        return is_kohya_dataset_config(path)

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        config_path = path
        text = read_bytes(path).decode("utf-8-sig", errors="replace")
        data = tomllib.loads(text)
        lines = text.splitlines()
        dataset = self.empty_dataset(path)
        problems = dataset.problems

        tables = [n for n, line in enumerate(lines, 1) if line.strip().startswith("[")]
        subset_lines = [n for n, line in enumerate(lines, 1) if line.strip().replace(" ", "") == "[[datasets.subsets]]"]
        block_start = [1]  # where the table being read starts: findings point inside it

        def where(needle: str) -> Location:
            """The line of the current table that mentions `needle` (TOML keeps no positions),
            else the table's first line."""
            start = block_start[0]
            end = next((n for n in tables if n > start), len(lines) + 1)
            for number in range(start, end):
                line = lines[number - 1]
                if needle and needle in line:
                    return Location(config_path, number, line.index(needle) + 1)
            return Location(config_path, start, 1)

        def problem(message: str, needle: str = "", kind: str = "dataset-config", start: int | None = None) -> None:
            saved = block_start[0]
            if start is not None:  # the table the setting comes from (a subset inherits [general]'s)
                block_start[0] = start
            problems.append(ReadProblem(kind, where(needle), message))
            block_start[0] = saved

        general_line = next((n for n, line in enumerate(lines, 1) if line.strip() == "[general]"), 1)

        general = data.get("general", {}) if isinstance(data.get("general", {}), dict) else {}
        block_start[0] = general_line
        for key in sorted(set(general) - GENERAL_KEYS):
            problem(f"unknown key `{key}` in [general] (kohya refuses the config)", key)
        block_start[0] = 1
        for key in sorted(set(data) - {"general", "datasets"}):
            problem(f"unknown table `[{key}]` (kohya reads [general] and [[datasets]] only)", key)
        triggers: dict[str, str] = {}
        keep_tokens: set[int] = set()
        labels: set[str] = set()
        dataset_lines = [n for n, line in enumerate(lines, 1) if line.strip().replace(" ", "") == "[[datasets]]"]
        subsets_seen = 0
        for number, block in enumerate(data.get("datasets", []), 1):
            if not isinstance(block, dict):
                continue
            block_start[0] = dataset_lines[number - 1] if number <= len(dataset_lines) else 1
            for key in sorted(set(block) - DATASET_KEYS - {"subsets"}):
                problem(f"unknown key `{key}` in [[datasets]] #{number} (kohya refuses the config)", key)
            subsets = block.get("subsets", []) or []
            if not isinstance(subsets, list):
                raise DatasetError(f"{config_path}: `subsets` of [[datasets]] #{number} must be a list of tables "
                                   "([[datasets.subsets]])")
            for sub_number, subset in enumerate(subsets, 1):
                if not isinstance(subset, dict):
                    continue
                subsets_seen += 1
                block_start[0] = subset_lines[subsets_seen - 1] if subsets_seen <= len(subset_lines) else 1
                name = f"[[datasets.subsets]] #{sub_number} of dataset #{number}"
                for key in sorted(set(subset) - SUBSET_KEYS):
                    problem(f"unknown key `{key}` in {name} (kohya refuses the config)", key)

                def setting(key: str, default: Any, subset: dict = subset, block: dict = block) -> Any:
                    for level in (subset, block, general):
                        if level.get(key) is not None:
                            return level[key]
                    return default

                def origin(key: str, subset: dict = subset, block: dict = block, number: int = number) -> int:
                    if subset.get(key) is not None:
                        return block_start[0]
                    if block.get(key) is not None and number <= len(dataset_lines):
                        return dataset_lines[number - 1]
                    return general_line if general.get(key) is not None else block_start[0]

                if "metadata_file" in subset or "conditioning_data_dir" in subset:
                    kind = "fine-tuning (metadata_file)" if "metadata_file" in subset else "ControlNet"
                    problem(f"{name} is a {kind} subset: lorakit does not read it (lint its captions directly)",
                            "metadata_file" if "metadata_file" in subset else "conditioning_data_dir")
                    continue
                raw_dir = subset.get("image_dir")
                if not isinstance(raw_dir, str) or not raw_dir:
                    problem(f"{name} has no image_dir (kohya requires one)")
                    continue
                image_dir = resolve_path(raw_dir, config_path.parent)
                if image_dir is None:
                    problem(f"image_dir `{raw_dir}` of {name} does not exist (looked in the current folder and "
                            f"next to {config_path.name})", "image_dir")
                    continue
                extension = str(setting("caption_extension", KOHYA_CAPTION_EXTENSION))
                extension = extension if extension.startswith(".") else "." + extension
                repeats = number_value(setting("num_repeats", 1), "num_repeats", f"{config_path}: {name}", 1)
                is_reg = bool(subset.get("is_reg", False))
                label = folder_label(image_dir, config_path.parent, labels)
                concept = concept_name(image_dir.name)
                part = read_folder(image_dir, extension)
                if not part.records and part.images_on_disk:
                    found = sorted({os.path.splitext(p.location.path.name)[1] for p in part.problems
                                    if p.kind == "extension-mismatch"})
                    also = f"; its caption files end in {', '.join(f'`{e}`' for e in found)}" if found else ""
                    problem(f"caption_extension `{extension}` of {name} matches no file in `{raw_dir}`: kohya "
                            f"trains its {len(part.images_on_disk)} images with no caption"
                            + (" (class_tokens only)" if setting("class_tokens", None) else "") + also,
                            "caption_extension", start=origin("caption_extension"))
                keep = number_value(setting("keep_tokens", 0), "keep_tokens", f"{config_path}: {name}")
                if keep and bool(setting("shuffle_caption", False)):
                    separator = str(setting("caption_separator", ",") or ",")
                    short = [r for r in part.records if r.caption is not None
                             and len([t for t in r.caption.split(separator) if t.strip()]) < keep]
                    if short:
                        problem(f"keep_tokens = {keep} in {name}, but {len(short)} of its {len(part.records)} "
                                f"captions have fewer tags (e.g. `{short[0].image}`): the whole caption is kept "
                                "and nothing shuffles", "keep_tokens", kind="dataset-config-warning",
                                start=origin("keep_tokens"))
                keep_tokens.add(keep)
                class_tokens = setting("class_tokens", None)
                if isinstance(class_tokens, str) and class_tokens.split() and not is_reg:
                    triggers[concept] = class_tokens.split()[0]
                merge_folder(dataset, part, label, concept, repeats)
                dataset.subsets.append({
                    "image_dir": str(image_dir), "label": label, "concept": concept, "num_repeats": repeats,
                    "caption_extension": extension, "is_reg": is_reg, "keep_tokens": keep,
                    "class_tokens": class_tokens})
        overrides: dict[str, dict[str, Any]] = {}
        if triggers:
            overrides.setdefault("entities", {})["concept-triggers"] = triggers
        if len(keep_tokens) == 1 and next(iter(keep_tokens)):
            overrides.setdefault("entities", {})["keep-tokens"] = next(iter(keep_tokens))
        dataset.config_overrides = overrides
        if not dataset.records and not dataset.images_on_disk and not problems:
            raise DatasetError(f"{path}: a kohya dataset config with no DreamBooth subset to read")
        return dataset


# ---------------------------------------------------------------------------------------------
# kohya_ss (GUI) and lora-scripts configs: sd-scripts' command-line arguments saved as a JSON file
# (kohya_ss) or a TOML file (`--config_file`, lora-scripts; tables are only grouping). They name
# the data by `train_data_dir` (kohya `N_name` folders) and `reg_data_dir`, or embed a dataset
# config by path (`dataset_config`).

ARGS_KEYS = ("train_data_dir", "dataset_config")


def _flat_arguments(data: Any) -> dict[str, Any]:
    """Every scalar key of nested tables, the first occurrence winning (tables only group)."""
    flat: dict[str, Any] = {}
    stack = [data]
    while stack:
        table = stack.pop(0)
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            if isinstance(value, dict):
                stack.append(value)
            else:
                flat.setdefault(key, value)
    return flat


def model_overrides(arguments: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What sd-scripts' arguments say of the model: `sdxl` / `v2` / `flux1` / `sd3` flags (or
    lora-scripts' `model_train_type`, `sdxl-lora`), else the base model's name; and
    `max_token_length` (150/225), the CLIP budget."""
    model = model_from_trainer(arguments.get("model_train_type"))
    flags = (("sdxl", "sdxl"), ("v2", "sd2"), ("flux1_checkbox", "flux"), ("flux1", "flux"), ("sd3_checkbox", "sd3"))
    for flag, key in flags:
        if model is None and arguments.get(flag) is True:
            model = model_named(key)
    name = arguments.get("pretrained_model_name_or_path")
    guess = model_from_path(name)
    if guess is not None and (model is None or (model.key == "sdxl" and guess.tags_native)):
        model = guess  # the checkpoint says which SDXL family (Pony, Illustrious)
    if model is None and isinstance(name, str) and name:
        model = model_named("sd1")  # sd-scripts' train_network.py without a model flag trains SD 1.x
    overrides: dict[str, dict[str, Any]] = {}
    if model is not None:
        overrides["dataset"] = {"model": model.key}
    length = arguments.get("max_token_length")
    if isinstance(length, int) and not isinstance(length, bool) and length in (150, 225):
        overrides["tokens"] = {"max": length}
    return overrides


def training_arguments(path: Path) -> dict[str, Any] | None:
    """sd-scripts' arguments from a kohya_ss JSON or a `--config_file` TOML, when they name data."""
    if not path.is_file() or path.suffix.lower() not in (".json", ".toml"):
        return None
    try:
        text = read_bytes(path).decode("utf-8-sig")
        import json

        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError, DatasetError):
        return None
    if isinstance(data, dict) and isinstance(data.get("datasets"), list):
        return None  # a dataset config itself
    flat = _flat_arguments(data)
    return flat if any(isinstance(flat.get(k), str) and flat.get(k) for k in ARGS_KEYS) else None


class KohyaArgumentsReader(FolderConfigReader):
    name = "kohya-arguments"
    description = "kohya_ss / lora-scripts training config (train_data_dir, reg_data_dir or dataset_config)"
    what = "a kohya training config"
    priority = 45

    def claims(self, path: Path) -> bool:
        return training_arguments(path) is not None

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        arguments = training_arguments(path) or {}
        embedded = arguments.get("dataset_config")
        if isinstance(embedded, str) and embedded:
            config = resolve_path(embedded, path.parent, Path.is_file)
            if config is None:
                raise DatasetError(f"{path}: dataset_config `{embedded}` does not exist")
            from lora_core.datasets import config_parse_error

            why = config_parse_error(config) if config.suffix.lower() == ".toml" else "is not a TOML file"
            if why is not None or not KohyaConfigReader().claims(config):
                raise DatasetError(f"{path}: dataset_config `{embedded}` {why or 'is not a kohya dataset config'}")
            return KohyaConfigReader().read(config, settings)
        extension = str(arguments.get("caption_extension") or KOHYA_CAPTION_EXTENSION)
        extension = extension if extension.startswith(".") else "." + extension
        dataset = self.empty_dataset(path)
        labels: set[str] = set()
        lines: list[str] | None = None
        for key in ("train_data_dir", "reg_data_dir"):
            raw = arguments.get(key)
            if not isinstance(raw, str) or not raw:
                continue
            folder = resolve_path(raw, path.parent)
            if folder is None:
                lines = lines or read_bytes(path).decode("utf-8", "replace").splitlines()
                dataset.problems.append(ReadProblem("dataset-config", line_of(path, lines, key),
                                                    f"{key} `{raw}` does not exist"))
                continue
            # kohya N_name folders keep their own repeats and concepts
            merge_folder(dataset, read_folder(folder, extension), folder_label(folder, path.parent, labels))
        keep = arguments.get("keep_tokens")
        if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0:
            dataset.config_overrides = {"entities": {"keep-tokens": keep}}
        dataset.config_overrides.update(model_overrides(arguments))
        if not dataset.records and not dataset.images_on_disk and not dataset.problems:
            raise DatasetError(f"{path}: its train_data_dir holds no images")
        return dataset

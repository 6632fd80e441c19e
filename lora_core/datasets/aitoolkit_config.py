"""ai-toolkit's YAML job config (`config.process[*].datasets[*]`), read as one dataset: every
dataset entry's `folder_path` with its own `caption_ext` (ai-toolkit's default `.txt`),
`num_repeats` as repeats and its folder as the concept.

ai-toolkit's trigger semantics (toolkit/dataloader_mixins.py, prompt_utils.py): with a
`trigger_word` (the entry's, else the process's), `[trigger]` and `[name]` in a caption are
replaced by it, and a caption without it gets it prepended, except in `is_reg` datasets; so a
caption "missing" the trigger is not a problem there (`[entities] trigger = ""` for the set, unless
a lorakit.toml says otherwise). Without a trigger_word, `[trigger]` is deleted from the caption:
a finding. Keys ai-toolkit does not read are findings too (it ignores them silently: a typo such
as `caption_extension` trains with the default). Images without a caption file train with
`default_caption` when one is set (an info, not LK002). Needs PyYAML.
"""

from __future__ import annotations

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
from lora_core.toolkit.models import TargetModel, model_from_path, model_from_trainer, model_named
from lora_core.violations import Location

# DatasetConfig's keys (toolkit/config_modules.py, ai-toolkit as of 2026-08).
DATASET_KEYS = frozenset({
    "alpha_mask", "audio_normalize", "audio_preserve_pitch", "augmentations", "augments", "auto_frame_count",
    "batch_size", "bucket_tolerance", "buckets", "cache_clip_vision_to_disk", "cache_latents",
    "cache_latents_num_workers", "cache_latents_to_disk", "cache_tensors_to_disk", "cache_text_embeddings",
    "caption_dropout_rate", "caption_ext", "caption_type", "clip_image_augmentations", "clip_image_from_same_folder",
    "clip_image_path", "clip_image_shuffle_augmentations", "control_from_same_folder", "control_path",
    "control_path_1", "control_path_2", "control_path_3", "control_transparent_color", "controls", "dataset_path",
    "debug", "default_caption", "diff_output_preservation", "diff_output_preservation_class", "do_audio", "do_i2v",
    "extra_values", "fast_image_size", "flip_x", "flip_y", "folder_path", "fps", "full_size_control_images",
    "guidance_type", "inpaint_path", "invert_mask", "is_reg", "keep_tokens", "load_image_when_caching_latents",
    "loss_multiplier", "mask_min_value", "mask_path", "network_weight", "num_controls_from_same_folder",
    "num_frames", "num_repeats", "num_workers", "poi", "prefetch_factor", "prior_reg", "random_crop",
    "random_scale", "random_triggers", "random_triggers_max", "replacements", "replay_transforms", "resolution",
    "scale", "shrink_video_to_frames", "shuffle_augmentations", "shuffle_tokens", "square_crop",
    "standardize_images", "token_dropout_rate", "trigger_word", "trim_auto_frame_count_tail", "type",
    "unconditional_path", "use_short_captions",
})
PLACEHOLDERS = ("[trigger]", "[name]")


#: The most nodes a YAML document may stand for once its aliases are expanded: a job config has
#: hundreds; ~600 bytes of nested anchors ("billion laughs") stand for billions.
MAX_YAML_NODES = 200_000


def _load_yaml(path: Path, text: str | None = None) -> Any:
    """The YAML of `path` (or of its `text`, already read): one document, no aliases that expand
    past MAX_YAML_NODES, no tags beyond YAML's own (SafeLoader)."""
    import importlib.util

    if importlib.util.find_spec("yaml") is None:
        raise DatasetError(f"{path}: reading an ai-toolkit config needs PyYAML (pip install pyyaml)")
    try:
        text = text if text is not None else read_bytes(path).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    why, data = _checked_yaml(text)
    if why is not None:
        raise DatasetError(f"{path}: {why}")
    return data


def yaml_problem(text: str) -> str | None:
    """Why `text` is not a YAML document lorakit reads: a syntax error (with its line), several
    documents, a tag YAML does not define (`!!python/object`), or aliases that expand past
    MAX_YAML_NODES. None when it is fine (or PyYAML is not installed)."""
    try:
        return _checked_yaml(text)[0]
    except ImportError:
        return None


def _checked_yaml(text: str) -> tuple[str | None, Any]:
    """(why `text` is refused, or None; the document when it is not): the aliases are bounded on
    the composed nodes before anything is constructed, then the document is loaded once."""
    import yaml

    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        return f"not valid YAML: {exc.problem or exc.context}{where}", None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return f"not valid YAML: {str(exc).splitlines()[0][:120]}", None
    if len(documents) > 1:
        return f"holds {len(documents)} YAML documents; a job config is one", None
    if not documents or documents[0] is None:
        return None, None
    sizes: dict[int, int] = {}

    def expanded(node: Any, depth: int = 0) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if depth > 200:
            raise RecursionError
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(expanded(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(expanded(key, depth + 1) + expanded(value, depth + 1) for key, value in node.value)
        elif isinstance(node, yaml.ScalarNode) and node.tag.startswith("tag:yaml.org,2002:python"):
            raise ValueError(node.tag)
        sizes[id(node)] = size
        return size

    try:
        total = expanded(documents[0])
    except RecursionError:
        return "not valid YAML: nested too deeply", None
    except ValueError as exc:
        return f"uses the tag `{exc}`, which lorakit never constructs", None
    if total > MAX_YAML_NODES:
        return f"its aliases expand to {total:,} nodes (more than {MAX_YAML_NODES:,}): refused", None
    try:
        data = yaml.safe_load(text)  # tags SafeLoader does not know (`!!python/object/apply`) are refused here
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return f"uses a tag lorakit never constructs: {exc.problem}{where}", None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return f"not valid YAML: {str(exc).splitlines()[0][:120]}", None
    return None, data


def _processes(data: Any) -> list[dict[str, Any]]:
    config = data.get("config") if isinstance(data, dict) else None
    processes = config.get("process") if isinstance(config, dict) else None
    return [p for p in processes if isinstance(p, dict)] if isinstance(processes, list) else []


def _process_model(process: dict[str, Any]) -> TargetModel | None:
    """The model a process trains: `model.arch` (`flux`, `sdxl`, `krea2`, ...), the older
    `is_flux` / `is_xl` / `is_v3` / `is_v2` flags, else the model's name."""
    model = process.get("model")
    if not isinstance(model, dict):
        return None
    found = model_from_trainer(model.get("arch"))
    for flag, key in (("is_flux", "flux"), ("is_xl", "sdxl"), ("is_v3", "sd3"), ("is_v2", "sd2")):
        if found is None and model.get(flag) is True:
            found = model_named(key)
    return found or model_from_path(model.get("name_or_path"))


def is_aitoolkit_config(path: Path) -> bool:
    """A YAML job config whose processes have `datasets`."""
    if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml"):
        return False
    try:
        processes = _processes(_load_yaml(path))
    except DatasetError:
        return False
    return any(isinstance(p.get("datasets"), list) for p in processes)


class AiToolkitConfigReader(FolderConfigReader):
    name = "ai-toolkit-config"
    description = "ai-toolkit YAML job config: every datasets entry's folder_path with its own settings"
    what = "an ai-toolkit job config"

    def claims(self, path: Path) -> bool:
        return is_aitoolkit_config(path)

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        text = read_bytes(path).decode("utf-8-sig", errors="replace")
        lines = text.splitlines()
        dataset = self.empty_dataset(path)

        def at(needle: str, after: int = 0) -> Location:
            return line_of(path, lines, needle, after)

        def problem(message: str, where: Location, kind: str = "dataset-config") -> None:
            dataset.problems.append(ReadProblem(kind, where, message))

        labels: set[str] = set()
        triggers: dict[str, str] = {}
        models: set[str] = set()
        cursor = 0  # entries are found in the text in order: findings point at their own lines
        for process in _processes(_load_yaml(path, text)):
            model = _process_model(process)
            if model is not None:
                models.add(model.key)
            process_trigger = process.get("trigger_word")
            entries = process.get("datasets") or []
            if not isinstance(entries, list):
                raise DatasetError(f"{path}: `datasets` of a process must be a list of dataset entries")
            for number, entry in enumerate(entries, 1):
                if not isinstance(entry, dict):
                    continue
                start = at("folder_path", cursor).line if "folder_path" in entry else cursor + 1
                cursor = start
                name = f"datasets entry #{number}"
                for key in sorted(set(entry) - DATASET_KEYS):
                    problem(f"`{key}` in {name} is not a key ai-toolkit reads (it ignores it silently: a typo trains "
                            "with the default)", at(key, max(0, start - 3)), "dataset-config-warning")
                raw_dir = entry.get("folder_path")
                if not isinstance(raw_dir, str) or not raw_dir:
                    problem(f"{name} has no folder_path (lorakit reads folder datasets)", Location(path, start, 1))
                    continue
                folder = resolve_path(raw_dir, path.parent)
                if folder is None:
                    problem(f"folder_path `{raw_dir}` of {name} does not exist", at("folder_path", start - 1))
                    continue
                extension = str(entry.get("caption_ext") or entry.get("caption_type") or ".txt")
                extension = extension if extension.startswith(".") else "." + extension
                repeats = number_value(entry.get("num_repeats", 1), "num_repeats", f"{path}: {name}", 1)
                is_reg = bool(entry.get("is_reg", False))
                trigger = entry.get("trigger_word") or process_trigger
                label = folder_label(folder, path.parent, labels)
                shown = "" if label == "." else label + "/"  # names as the merged dataset gives them
                part = read_folder(folder, extension)
                captioned = {r.image for r in part.records}
                uncaptioned = sorted(part.images_on_disk - captioned)
                default = entry.get("default_caption")
                if uncaptioned and isinstance(default, str) and default.strip():
                    part.images_on_disk.difference_update(uncaptioned)  # they do train: not LK002
                    problem(f"{len(uncaptioned)} images in `{raw_dir}` have no `{extension}` file and train with "
                            f"default_caption `{default}` (e.g. `{shown}{uncaptioned[0]}`)",
                            at("default_caption", start - 1), "dataset-config-info")
                if not part.records and uncaptioned and not default:
                    where = at("caption_ext", start - 1) if "caption_ext" in entry else Location(path, start, 1)
                    problem(f"caption_ext `{extension}` of {name} matches no file in `{raw_dir}`: ai-toolkit trains "
                            f"its {len(uncaptioned)} images with empty captions", where)
                placeholders = [r for r in part.records if r.caption and any(p in r.caption for p in PLACEHOLDERS)]
                if placeholders and not trigger:
                    problem(f"{len(placeholders)} captions in `{raw_dir}` use [trigger] (e.g. "
                            f"`{shown}{placeholders[0].image}`) but no trigger_word is set: ai-toolkit deletes the "
                            "placeholder", Location(path, start, 1))
                if trigger:
                    # what ai-toolkit trains: the placeholder replaced (a fix writes that text back,
                    # which trains the same)
                    for record in placeholders:
                        caption = record.caption or ""
                        for placeholder in PLACEHOLDERS:
                            caption = caption.replace(placeholder, str(trigger))
                        record.caption = record.original_caption = caption
                if trigger and not is_reg:
                    triggers[concept_name(folder.name)] = str(trigger)
                merge_folder(dataset, part, label, concept_name(folder.name), repeats)
                dataset.subsets.append({"image_dir": str(folder), "num_repeats": repeats,
                                        "caption_extension": extension, "is_reg": is_reg, "class_tokens": trigger})
        if triggers:
            # ai-toolkit puts the trigger into every caption that lacks it: LK305 is moot, the
            # trigger itself (its variants, its position) is still checked
            entities: dict[str, Any] = {"trigger-inserted": True, "concept-triggers": triggers}
            if len(set(triggers.values())) == 1:
                entities["trigger"] = next(iter(triggers.values()))
            dataset.config_overrides = {"entities": entities}
        if len(models) == 1:  # the caption budget and form the model expects (LK501)
            dataset.config_overrides.setdefault("dataset", {})["model"] = models.pop()
        if not dataset.records and not dataset.images_on_disk and not dataset.problems:
            raise DatasetError(f"{path}: an ai-toolkit config with no folder dataset to read")
        return dataset

"""Two trainers' JSON dataset descriptions, each read as one dataset of its image folders:

- **OneTrainer** concepts (`concepts.json`: a list of concepts, or a training config with a
  `concepts` list; modules/util/config/ConceptConfig.py): each enabled concept's `path`, its
  captions from `<image>.txt` when `text.prompt_source` is `sample` (the default), and
  `balancing` with `balancing_strategy` REPEATS (or SAMPLES per epoch) as repeats.
- **SimpleTuner** data backends (`multidatabackend.json`: a list of backends;
  documentation/DATALOADER.md): each enabled `local` image backend's `instance_data_dir`,
  captions from `.txt` files when `caption_strategy` is `textfile`, and `repeats` (SimpleTuner
  counts extra passes: its 0 is kohya's 1). With no caption_strategy SimpleTuner falls back to its
  `--caption_strategy` argument, whose default is `filename`: the .txt captions would not train.
  `instance_prompt` with `prepend_instance_prompt` is inserted like ai-toolkit's trigger.

What contradicts the data, or a key the trainer does not read, is LK010. Both trainers split a
caption file on newlines into several captions (OneTrainer picks one at random, SimpleTuner
unless disable_multiline_split): lorakit lints the file as one caption.
"""

from __future__ import annotations

import json
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
from lora_core.toolkit.models import model_from_path, model_from_trainer
from lora_core.violations import Location

# OneTrainer's ConceptConfig keys (as of 2026-08), and the legacy ones its migrations accept.
ONETRAINER_KEYS = frozenset({
    "image", "text", "name", "path", "seed", "enabled", "type", "include_subdirectories", "image_variations",
    "text_variations", "balancing", "balancing_strategy", "loss_weight", "concept_stats", "repeats",
    "validation_concept",
})
# The keys SimpleTuner's data backend code and its dataloader documentation read (as of 2026-08).
SIMPLETUNER_KEYS = frozenset({
    "audio", "audio_column", "audio_data_backend", "auto_generated", "auto_load", "aws", "aws_access_key_id",
    "aws_bucket_name", "aws_data_prefix", "aws_endpoint_url", "aws_region_name", "aws_secret_access_key",
    "aws_session_token", "bucket_report", "buffer_size", "cache_dir", "cache_dir_conditioning_image_embeds",
    "cache_dir_vae", "cache_file_suffix", "caption_file_extensions", "caption_filter_list", "caption_shuffle",
    "caption_strategy", "clear_cache_each_epoch", "composite_image_column", "compress_cache", "conditioning",
    "conditioning_config", "conditioning_data", "conditioning_image_embed_batch_size",
    "conditioning_image_embed_cache", "conditioning_image_embeds", "conditioning_type", "config", "crop",
    "crop_aspect", "crop_aspect_buckets", "crop_style", "csv_cache_dir", "csv_caption_column", "csv_file",
    "csv_url_column", "data_backend", "dataset_name", "dataset_type", "default", "delete_nsfw_images",
    "delete_problematic_images", "delete_unwanted_images", "disable", "disable_multiline_split",
    "disable_validation", "disabled", "distillation_cache", "distillation_type", "end_epoch", "end_step",
    "grounding", "grounding_data", "hash_filenames", "hf_token", "huggingface", "id", "image_column",
    "image_embeds", "image_processing_batch_size", "instance_data_dir", "instance_data_root", "instance_prompt",
    "is_regularisation_data", "is_regularization_data", "max_file_size", "max_num_samples",
    "max_upscale_threshold", "max_workers", "maximum_aspect_ratio", "maximum_image_size", "metadata",
    "metadata_backend", "metadata_update_interval", "minimum_aspect_ratio", "minimum_image_size", "num_proc",
    "only_instance_prompt", "parallel_downloads", "parquet", "prepend_instance_prompt",
    "preserve_data_backend_cache", "probability", "read_batch_size", "repeats", "resolution", "resolution_type",
    "revision", "s2v_datasets", "sampler", "scan_for_errors", "shard_cache_gb", "shorten_filenames", "shuffle",
    "skip_file_discovery", "slider_strength", "source", "source_dataset_id", "split", "split_composite_images",
    "start_epoch", "start_step", "streaming", "subfolder", "target_downsample_size", "text_cache_disable",
    "text_cache_ondemand", "text_embed_cache", "text_embeds", "text_encoder_batch_size",
    "timestep_sampling_offset", "train_batch_size", "train_dataloader", "train_dataset", "type", "vae_batch_size",
    "vae_cache_clear_each_epoch", "vae_cache_disable", "vae_cache_ondemand", "vae_cache_scan_behaviour",
    "vaecache", "video", "video_column", "webshart", "webshart_optimise_captions", "webshart_optimize_captions",
    "write_batch_size",
})


def _load_json(path: Path) -> Any:
    try:
        return json.loads(read_bytes(path).decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError, DatasetError):
        return None


def _onetrainer_concepts(data: Any) -> list[dict[str, Any]] | None:
    concepts = data.get("concepts") if isinstance(data, dict) else data
    if isinstance(concepts, list) and concepts and all(isinstance(c, dict) and "path" in c for c in concepts):
        return concepts
    return None


def _simpletuner_backends(data: Any) -> list[dict[str, Any]] | None:
    if isinstance(data, list) and data and all(isinstance(b, dict) and "id" in b for b in data) and \
            any("instance_data_dir" in b or "type" in b for b in data):
        return data
    return None


class _JsonFolderConfigReader(FolderConfigReader):
    """Shared by the two: a JSON file naming image folders, read into one dataset."""

    extract: Any = None

    def claims(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".json" and type(self).extract(_load_json(path)) is not None

    def start(self, path: Path) -> tuple[Dataset, list[str], Any]:
        text = read_bytes(path).decode("utf-8-sig", errors="replace")
        return self.empty_dataset(path), text.splitlines(), type(self).extract(json.loads(text))

    def problem_at(self, dataset: Dataset, lines: list[str], message: str, needle: str, after: int, fallback: int,
                   kind: str = "dataset-config") -> None:
        """A finding at the first line after `after` mentioning `needle`, or at line `fallback`."""
        path = dataset.path
        where = line_of(path, lines, needle, after) if needle else Location(path, fallback, 1)
        dataset.problems.append(ReadProblem(kind, where, message))


class OneTrainerConceptsReader(_JsonFolderConfigReader):
    name = "onetrainer-concepts"
    description = "OneTrainer concepts (concepts.json, or a config's concepts): every enabled concept's folder"
    extract = staticmethod(_onetrainer_concepts)

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        dataset, lines, concepts = self.start(path)
        labels: set[str] = set()
        cursor = 0
        for number, concept in enumerate(concepts, 1):
            raw = str(concept.get("path") or "")
            previous = cursor  # this concept's keys lie after the previous concept's "path"
            start = line_of(path, lines, '"path"', cursor).line
            cursor = start

            def problem(message: str, needle: str = "", kind: str = "dataset-config", start: int = start,
                        previous: int = previous) -> None:
                self.problem_at(dataset, lines, message, needle, previous, start, kind)

            name = f"concept #{number}" + (f" ({concept['name']})" if concept.get("name") else "")
            for key in sorted(set(concept) - ONETRAINER_KEYS):
                problem(f"`{key}` in {name} is not a key OneTrainer reads (it ignores it)", f'"{key}"',
                        "dataset-config-warning")
            if not concept.get("enabled", True) or str(concept.get("type", "STANDARD")).upper() != "STANDARD" \
                    or concept.get("validation_concept"):
                continue  # disabled, validation or prior-prediction concepts do not train captions
            folder = resolve_path(raw, path.parent) if raw else None
            if folder is None:
                problem(f"path `{raw}` of {name} does not exist" if raw else f"{name} has no path", '"path"')
                continue
            text = concept.get("text") if isinstance(concept.get("text"), dict) else {}
            source = str(text.get("prompt_source", "sample"))
            if source != "sample":
                what = "its file names" if source == "filename" else f"`{text.get('prompt_path', '')}`"
                problem(f"{name} takes its captions from {what} (prompt_source = {source}), not from caption files: "
                        "not linted", '"prompt_source"', "dataset-config-info")
                continue
            part = read_folder(folder, ".txt")
            images = len(part.images_on_disk) or 1
            balancing = number_value(concept.get("balancing", concept.get("repeats", 1.0)), "balancing",
                                     f"{path}: {name}", 0, whole=False) or 1.0
            strategy = str(concept.get("balancing_strategy", "REPEATS")).upper()
            repeats = max(1, round(balancing / images if strategy == "SAMPLES" else balancing))
            keep = number_value(text.get("keep_tags_count", 1) if isinstance(text, dict) else 1, "keep_tags_count",
                                f"{path}: {name}")
            if text.get("enable_tag_shuffling") and keep:
                delimiter = str(text.get("tag_delimiter", ",") or ",")
                short = [r for r in part.records if r.caption is not None
                         and len([t for t in r.caption.split(delimiter) if t.strip()]) < keep]
                if short:
                    problem(f"keep_tags_count = {keep} in {name}, but {len(short)} of its captions have fewer tags: "
                            "nothing shuffles in them", '"keep_tags_count"', "dataset-config-warning")
            merge_folder(dataset, part, folder_label(folder, path.parent, labels), concept_name(folder.name), repeats)
        if not dataset.records and not dataset.images_on_disk and not dataset.problems:
            raise DatasetError(f"{path}: OneTrainer concepts with no enabled folder to read")
        data = _load_json(path)
        if isinstance(data, dict):  # a whole OneTrainer config: its model type sets the caption budget
            model = model_from_trainer(data.get("model_type")) or model_from_path(data.get("base_model_name"))
            if model is not None:
                dataset.config_overrides.setdefault("dataset", {})["model"] = model.key
        return dataset


class SimpleTunerBackendsReader(_JsonFolderConfigReader):
    name = "simpletuner-backends"
    description = "SimpleTuner data backends (multidatabackend.json): every enabled local image backend's folder"
    extract = staticmethod(_simpletuner_backends)

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        dataset, lines, backends = self.start(path)
        labels: set[str] = set()
        triggers: dict[str, str] = {}
        cursor = 0
        for backend in backends:
            ident = str(backend.get("id"))
            start = line_of(path, lines, f'"{ident}"', cursor).line
            cursor = start

            def problem(message: str, needle: str = "", kind: str = "dataset-config", start: int = start) -> None:
                self.problem_at(dataset, lines, message, needle, start - 1, start, kind)

            name = f"backend `{ident}`"
            for key in sorted(set(backend) - SIMPLETUNER_KEYS):
                problem(f"`{key}` in {name} is not a key SimpleTuner reads (a typo trains with the default)",
                        f'"{key}"', "dataset-config-warning")
            kind = str(backend.get("dataset_type", "image"))
            if backend.get("disabled") or backend.get("disable") or kind != "image":
                continue  # caches (text_embeds, image_embeds), video, audio, or switched off
            if str(backend.get("type", "local")) != "local":
                problem(f"{name} is a {backend.get('type')} backend: lorakit reads local folders only", '"type"',
                        "dataset-config-info")
                continue
            raw = str(backend.get("instance_data_dir") or "")
            folder = resolve_path(raw, path.parent) if raw else None
            if folder is None:
                problem(f"instance_data_dir `{raw}` of {name} does not exist" if raw else
                        f"{name} has no instance_data_dir", '"instance_data_dir"')
                continue
            strategy = backend.get("caption_strategy")
            extensions = backend.get("caption_file_extensions")
            extension = str(extensions[0]) if isinstance(extensions, list) and extensions else ".txt"
            extension = extension if extension.startswith(".") else "." + extension
            part = read_folder(folder, extension)
            if strategy is None and part.records:
                problem(f"{name} sets no caption_strategy: SimpleTuner then uses its --caption_strategy, whose "
                        f"default is `filename`, and the {len(part.records)} `{extension}` captions in `{raw}` do not "
                        'train (set "caption_strategy": "textfile")', f'"{ident}"')
            elif strategy not in (None, "textfile"):
                problem(f"{name} takes its captions from {strategy} (caption_strategy), not from caption files: "
                        "not linted", '"caption_strategy"', "dataset-config-info")
                continue
            elif not part.records and part.images_on_disk:
                problem(f"caption_strategy textfile in {name}, but no `{extension}` file in `{raw}`: its "
                        f"{len(part.images_on_disk)} images train with empty captions", '"caption_strategy"')
            repeats = number_value(backend.get("repeats", 0), "repeats", f"{path}: {name}") + 1  # extra passes
            prompt = backend.get("instance_prompt")
            regularisation = backend.get("is_regularisation_data") or backend.get("is_regularization_data")
            if prompt and backend.get("prepend_instance_prompt") and not regularisation:
                triggers[concept_name(folder.name)] = str(prompt)
            merge_folder(dataset, part, folder_label(folder, path.parent, labels), concept_name(folder.name), repeats)
        if triggers:
            dataset.config_overrides = {"entities": {"trigger-inserted": True, "concept-triggers": triggers}}
        if not dataset.records and not dataset.images_on_disk and not dataset.problems:
            raise DatasetError(f"{path}: SimpleTuner backends with no local image folder to read")
        return dataset

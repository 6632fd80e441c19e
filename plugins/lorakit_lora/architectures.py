"""Single-file checkpoints, loaded offline: the architectures they may hold, written in code.

`from_single_file` needs the diffusers configs of the model a checkpoint was saved from; without
them diffusers downloads them from the hub, which fails offline. `write_config_folder(folder,
"sdxl")` writes a diffusers-layout folder with every config and the real CLIP tokenizer (from the
same source the token-count rule uses) and no weights: enough for `from_single_file(ckpt,
config=folder, local_files_only=True)`. The values are those of the published model folders
(runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-2-1,
stabilityai/stable-diffusion-xl-base-1.0). `load_single_file` detects the family from the
checkpoint's keys and loads it against that folder (cached under ~/.cache/lorakit/architectures)
or against a folder the user names; the trainer and `lorakit generate` both load through it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.errors import ConfigError, PluginError

_VAE = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4, "in_channels": 3,
    "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 512,
    "scaling_factor": 0.18215,
}
_UNET_COMMON = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False, "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "downsample_padding": 1, "flip_sin_to_cos": True,
    "freq_shift": 0, "in_channels": 4, "out_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
    "norm_eps": 1e-05, "norm_num_groups": 32,
}
_SCHEDULER = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
}

_CLIP_L = {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 768,
           "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
           "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768, "vocab_size": 49408,
           "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "layer_norm_eps": 1e-05}
_OPEN_CLIP = {"model_type": "clip_text_model", "hidden_act": "gelu", "max_position_embeddings": 77,
              "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "layer_norm_eps": 1e-05}


@dataclass(frozen=True)
class TextPart:
    """One text encoder of an architecture, and the tokenizer that goes with it."""

    encoder_class: str
    config: dict[str, Any]
    pad_token: str  # OpenCLIP-trained encoders pad with "!", OpenAI CLIP with <|endoftext|>


@dataclass(frozen=True)
class Architecture:
    pipeline_class: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    scheduler: dict[str, Any]
    text: tuple[TextPart, ...]  # text_encoder[/tokenizer], then text_encoder_2[/tokenizer_2]


ARCHITECTURES: dict[str, Architecture] = {
    "sd15": Architecture(
        "StableDiffusionPipeline",
        unet={**_UNET_COMMON, "attention_head_dim": 8, "cross_attention_dim": 768, "sample_size": 64},
        vae=_VAE,
        scheduler={"_class_name": "PNDMScheduler", **_SCHEDULER, "skip_prk_steps": True, "prediction_type": "epsilon"},
        text=(TextPart("CLIPTextModel", _CLIP_L, "<|endoftext|>"),)),
    "sd21": Architecture(
        "StableDiffusionPipeline",
        unet={**_UNET_COMMON, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "sample_size": 96,
              "use_linear_projection": True},
        vae=_VAE,
        scheduler={"_class_name": "DDIMScheduler", **_SCHEDULER, "prediction_type": "v_prediction"},
        text=(TextPart("CLIPTextModel", {**_OPEN_CLIP, "architectures": ["CLIPTextModel"], "hidden_size": 1024,
                                         "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16,
                                         "projection_dim": 512}, "!"),)),
    "sdxl": Architecture(
        "StableDiffusionXLPipeline",
        unet={**_UNET_COMMON, "block_out_channels": [320, 640, 1280], "attention_head_dim": [5, 10, 20],
              "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
              "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
              "transformer_layers_per_block": [1, 2, 10], "cross_attention_dim": 2048, "sample_size": 128,
              "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
              "projection_class_embeddings_input_dim": 2816},  # 6 time ids x 256 + the pooled 1280
        vae={**_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        scheduler={"_class_name": "EulerDiscreteScheduler", **_SCHEDULER, "prediction_type": "epsilon",
                   "interpolation_type": "linear", "timestep_spacing": "leading", "use_karras_sigmas": False},
        text=(TextPart("CLIPTextModel", _CLIP_L, "<|endoftext|>"),
              TextPart("CLIPTextModelWithProjection", {
                  **_OPEN_CLIP, "architectures": ["CLIPTextModelWithProjection"], "hidden_size": 1280,
                  "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 20,
                  "projection_dim": 1280}, "!"))),
}


def write_config_folder(folder: Path, architecture: str) -> Path:
    """A weightless diffusers folder for `architecture` ("sd15", "sd21" or "sdxl")."""
    from lora_core.toolkit.clip_tokens import write_tokenizer_folder

    spec = ARCHITECTURES[architecture]
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"_class_name": spec.pipeline_class,
                             "scheduler": ["diffusers", spec.scheduler["_class_name"]],
                             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    if spec.pipeline_class == "StableDiffusionPipeline":
        index.update({"feature_extractor": [None, None], "safety_checker": [None, None],
                      "requires_safety_checker": False})
    _write_json(folder / "unet" / "config.json", spec.unet)
    _write_json(folder / "vae" / "config.json", spec.vae)
    _write_json(folder / "scheduler" / "scheduler_config.json", spec.scheduler)
    for number, part in enumerate(spec.text, start=1):
        suffix = "" if number == 1 else f"_{number}"
        index[f"text_encoder{suffix}"] = ["transformers", part.encoder_class]
        index[f"tokenizer{suffix}"] = ["transformers", "CLIPTokenizer"]
        _write_json(folder / f"text_encoder{suffix}" / "config.json", part.config)
        tokenizer = write_tokenizer_folder(folder / f"tokenizer{suffix}")
        special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                   "pad_token": part.pad_token}
        _write_json(tokenizer / "tokenizer_config.json",
                    {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special})
        _write_json(tokenizer / "special_tokens_map.json", special)
    _write_json(folder / "model_index.json", index)  # last: its presence marks a complete folder
    return folder


def spec_digest(architecture: str) -> str:
    """A short hash of everything `write_config_folder` writes for `architecture`."""
    import hashlib
    from dataclasses import asdict

    spec = json.dumps(asdict(ARCHITECTURES[architecture]), sort_keys=True)
    return hashlib.sha256(spec.encode("utf-8")).hexdigest()[:12]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def detect(checkpoint_keys: set[str]) -> str | None:
    """"sd15", "sd21" or "sdxl" from a single-file checkpoint's keys (LDM layout), else None."""
    if any(k.startswith("conditioner.embedders.1.model.") for k in checkpoint_keys):
        return "sdxl"  # CLIP ViT-L beside OpenCLIP bigG
    if any(k.startswith("cond_stage_model.model.") for k in checkpoint_keys):
        return "sd21"  # OpenCLIP text encoder
    if any(k.startswith("cond_stage_model.transformer.") for k in checkpoint_keys):
        return "sd15"
    return None


def load_single_file(path: Path, config_folder: str | None = None, allow_pickle: bool = False,
                     **options: Any) -> Any:
    """The diffusers pipeline (SD 1.x/2.x or SDXL) in an original-layout checkpoint file, with no
    network: read against `config_folder`, or the folder of the architecture its keys show. A
    pickle file (.ckpt, .pt, .bin) is read only when `allow_pickle` says its source is trusted,
    and then with torch's restricted (weights-only) unpickler, as diffusers reads it too."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    from lora_core.toolkit.hub import PICKLE_SUFFIXES, refuse_pickle

    refuse_pickle(path, allow_pickle)
    pickled = path.suffix.lower() in PICKLE_SUFFIXES
    keys = set(_pickle_state_dict(path)) if pickled else None  # memory-mapped: checks it reads, costs little
    if config_folder:
        folder = Path(config_folder)
    else:
        folder = known_architecture_folder(path, keys if keys is not None else checkpoint_keys(path))
    sdxl = (folder / "text_encoder_2").is_dir()
    if not sdxl:
        options = {"safety_checker": None, "requires_safety_checker": False, **options}
    loader = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    try:
        return loader.from_single_file(str(path), config=str(folder), local_files_only=True, **options)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        kind = "an SDXL" if sdxl else "a Stable Diffusion 1.x/2.x"
        raise PluginError(f"{path}: could not be loaded as {kind} checkpoint against {folder} "
                          f"({str(exc).splitlines()[0][:160]})") from None


def _pickle_state_dict(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (pre-zip) format cannot be memory-mapped
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        raise PluginError(f"{path}: not a checkpoint torch can read with its weights-only loader "
                          f"({str(exc).strip().splitlines()[0][:160]}); convert it to .safetensors") from None
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # Lightning-era SD checkpoints nest the weights
    if not isinstance(state, dict):
        raise PluginError(f"{path}: holds a {type(state).__name__}, not a dictionary of weights")
    return state


def checkpoint_keys(path: Path) -> set[str]:
    """The tensor names of a `.safetensors` checkpoint (read from its header)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            return set(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise PluginError(f"{path}: not a readable .safetensors file ({str(exc).splitlines()[0][:160]})") from None


def known_architecture_folder(path: Path, keys: set[str]) -> Path:
    """The config folder lorakit writes itself for the family a checkpoint's keys show."""
    architecture = detect(keys)
    if architecture is None:
        raise ConfigError(f"{path}: not a Stable Diffusion 1.x/2.x or SDXL checkpoint lorakit knows; for another "
                          "variant name a diffusers folder of its architecture (configs suffice): [train] "
                          "base-model-config, or --base-model-config")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lorakit" / "architectures"
    folder = cache / f"{architecture}-{spec_digest(architecture)}"  # a changed spec gets a fresh folder
    if not (folder / "model_index.json").is_file():
        _write_folder_atomically(folder, architecture)
    return folder


def _write_folder_atomically(folder: Path, architecture: str) -> None:
    """Build `folder` beside itself and rename it into place, so an interrupted or concurrent
    first run never leaves a half-written config folder behind (another process may win the race)."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        write_config_folder(staging, architecture)
        try:
            os.rename(staging, folder)
        except OSError:  # the folder exists: complete (another process was first), or a partial leftover
            if not (folder / "model_index.json").is_file():
                shutil.rmtree(folder)
                os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

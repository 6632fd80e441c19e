"""The architectures of the base models a single-file checkpoint may hold, written in code.

`from_single_file` needs the diffusers configs of the model a checkpoint was saved from; without
them diffusers downloads them from the hub, which fails offline. `write_config_folder(folder,
"sd15")` writes a diffusers-layout folder with every config and the real CLIP tokenizer (from the
same source the token-count rule uses) and no weights: enough for `from_single_file(ckpt,
config=folder, local_files_only=True)`. The values are those of the published model folders
(runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-2-1).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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

ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd15": {
        "unet": {**_UNET_COMMON, "attention_head_dim": 8, "cross_attention_dim": 768, "sample_size": 64},
        "vae": _VAE,
        "text_encoder": {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 768,
                         "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
                         "max_position_embeddings": 77, "hidden_act": "quick_gelu", "projection_dim": 768,
                         "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
                         "layer_norm_eps": 1e-05},
        "scheduler": {"_class_name": "PNDMScheduler", **_SCHEDULER, "skip_prk_steps": True,
                      "prediction_type": "epsilon"},
        "pad_token": "<|endoftext|>",
    },
    "sd21": {
        "unet": {**_UNET_COMMON, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                 "sample_size": 96, "use_linear_projection": True},
        "vae": _VAE,
        "text_encoder": {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_size": 1024,
                         "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16,
                         "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 512,
                         "vocab_size": 49408, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
                         "layer_norm_eps": 1e-05},
        "scheduler": {"_class_name": "DDIMScheduler", **_SCHEDULER, "prediction_type": "v_prediction"},
        "pad_token": "!",
    },
}


def write_config_folder(folder: Path, architecture: str) -> Path:
    """A weightless diffusers folder for `architecture` ("sd15" or "sd21")."""
    from lora_core.clip_tokens import write_tokenizer_folder

    spec = ARCHITECTURES[architecture]
    folder.mkdir(parents=True, exist_ok=True)
    index = {"_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
             "safety_checker": [None, None], "requires_safety_checker": False,
             "scheduler": ["diffusers", spec["scheduler"]["_class_name"]],
             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    _write_json(folder / "model_index.json", index)
    for part in ("unet", "vae", "text_encoder"):
        _write_json(folder / part / "config.json", spec[part])
    _write_json(folder / "scheduler" / "scheduler_config.json", spec["scheduler"])
    tokenizer = write_tokenizer_folder(folder / "tokenizer")
    _write_json(tokenizer / "tokenizer_config.json", {
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": spec["pad_token"],
        "do_lower_case": True})
    _write_json(tokenizer / "special_tokens_map.json", {
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "pad_token": spec["pad_token"]})
    return folder


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def detect(checkpoint_keys: set[str], text_width: int | None = None) -> str | None:
    """"sd15" or "sd21" from a single-file checkpoint's keys (LDM layout), else None."""
    if any(k.startswith("conditioner.embedders.1") for k in checkpoint_keys):
        return None  # SDXL
    if any(k.startswith("cond_stage_model.model.") for k in checkpoint_keys):
        return "sd21"  # OpenCLIP text encoder
    if any(k.startswith("cond_stage_model.transformer.") for k in checkpoint_keys):
        return "sd15"
    return None

"""Writing the trained LoRA: the diffusers/peft file and the kohya / A1111 file.

diffusers layout (`pytorch_lora_weights.safetensors`): `unet.<module>.lora.down.weight` keys and
the `lora_adapter_metadata` that keeps alpha; without it diffusers reloads at alpha = rank, half
the strength. Text-encoder keys carry `text_model.` as transformers 4, A1111 and kohya files do.

kohya layout (`<name>.safetensors`): `lora_unet_<module_path_with_underscores>.lora_down.weight`,
`.lora_up.weight` and `.alpha` (the real alpha, not the rank diffusers' converter writes), text
encoder `lora_te_text_model_...`; `ss_*` metadata as kohya sd-scripts writes it, `modelspec.*`
keys, and lorakit's own provenance keys. Both files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.toolkit.sd_names import sai_unet_path

DIFFUSERS_FILE = "pytorch_lora_weights.safetensors"


def lora_pairs(model: Any) -> dict[str, tuple[Any, Any]]:
    """module path -> (lora_A weight, lora_B weight) of the default adapter."""
    pairs: dict[str, list[Any]] = {}
    for name, parameter in model.named_parameters():
        for part, slot in ((".lora_A.default.weight", 0), (".lora_B.default.weight", 1)):
            if name.endswith(part):
                pairs.setdefault(name[: -len(part)], [None, None])[slot] = parameter.detach().float().cpu()
    return {k: (a, b) for k, (a, b) in pairs.items() if a is not None and b is not None}


def _text_path(module: str) -> str:
    return module if module.startswith("text_model.") else "text_model." + module


def _safetensors_bytes(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def write_diffusers(folder: Path, unet: Any, text_encoders: list[Any], rank: int, alpha: float,
                    unet_targets: list[str], text_targets: list[str]) -> Path:
    """`text_encoders`: the trained ones (none, one, or SDXL's two), written as `text_encoder.` and
    `text_encoder_2.`."""
    tensors = {}
    for module, (down, up) in lora_pairs(unet).items():
        tensors[f"unet.{module}.lora.down.weight"] = down
        tensors[f"unet.{module}.lora.up.weight"] = up
    adapter = {"r": rank, "lora_alpha": alpha, "target_modules": unet_targets, "use_dora": False,
               "use_rslora": False, "lora_bias": False}
    metadata = {f"unet.{k}": v for k, v in adapter.items()}
    for index, encoder in enumerate(text_encoders):
        prefix = "text_encoder" if index == 0 else f"text_encoder_{index + 1}"
        for module, (down, up) in lora_pairs(encoder).items():
            tensors[f"{prefix}.{_text_path(module)}.lora_linear_layer.down.weight"] = down
            tensors[f"{prefix}.{_text_path(module)}.lora_linear_layer.up.weight"] = up
        metadata.update({f"{prefix}.{k}": v for k, v in {**adapter, "target_modules": text_targets}.items()})
    path = folder / DIFFUSERS_FILE
    atomic_write_bytes(path, _safetensors_bytes(tensors, {"format": "pt",
                                                          "lora_adapter_metadata": json.dumps(metadata)}))
    return path


def kohya_tensors(unet: Any, text_encoders: list[Any], alpha: float, sdxl: bool = False) -> dict[str, Any]:
    """kohya prefixes: `lora_te` for SD 1.x/2.x's one text encoder, `lora_te1` / `lora_te2` for SDXL.
    SDXL U-Net modules carry the original (SAI) names, as kohya writes them: its own loader maps
    diffusers names too, but `networks/sdxl_merge_lora.py` does not (it would merge nothing of the
    U-Net), and ComfyUI / A1111 read both."""
    import torch

    tensors = {}
    prefixes = ["lora_te1", "lora_te2"] if sdxl else ["lora_te"]
    groups = [("lora_unet", unet, False)] + [(prefix, encoder, True)
                                             for prefix, encoder in zip(prefixes, text_encoders)]
    layers = getattr(getattr(unet, "config", None), "layers_per_block", 2)
    layers = layers if isinstance(layers, int) else 2
    for prefix, model, is_text in groups:
        for module, (down, up) in lora_pairs(model).items():
            path = _text_path(module) if is_text else (sai_unet_path(module, layers) if sdxl else module)
            name = prefix + "_" + path.replace(".", "_")
            tensors[f"{name}.lora_down.weight"] = down
            tensors[f"{name}.lora_up.weight"] = up
            tensors[f"{name}.alpha"] = torch.tensor(float(alpha))
    return tensors


def caption_hash(captions: list[str]) -> str:
    digest = hashlib.sha256()
    for caption in sorted(captions):
        digest.update(caption.encode("utf-8") + b"\n")
    return digest.hexdigest()


def tag_frequency(examples: list[Any]) -> dict[str, dict[str, int]]:
    """kohya's `ss_tag_frequency`: per dataset folder, how often each comma-separated tag occurs."""
    by_folder: dict[str, Counter[str]] = {}
    for example in examples:
        folder = example.image.parent.name or "."
        tags = (t.strip() for t in example.caption.split(","))
        by_folder.setdefault(folder, Counter()).update(t for t in tags if t)
    return {folder: dict(counts) for folder, counts in by_folder.items()}


ARCHITECTURES = {"sd_v1": "stable-diffusion-v1", "sd_v2": "stable-diffusion-v2-512",
                 "sdxl": "stable-diffusion-xl-v1-base"}
KOHYA_VERSIONS = {"sdxl": "sdxl_base_v1-0"}
MODELSPEC_VERSION = "1.0.1"  # kohya sd-scripts' library/sai_model_spec.py


def architecture(base: Any) -> str:
    """modelspec.architecture as kohya determines it: an SD 2.x v-prediction model is the 768-v one."""
    if base.version == "sd_v2" and base.prediction_type == "v_prediction":
        return "stable-diffusion-v2-768-v"
    return ARCHITECTURES.get(base.version, base.version)


def addnet_hashes(tensors: dict[str, Any], metadata: dict[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash), computed as kohya's precalculate_safetensors_hashes:
    the file written with its `ss_*` metadata only; the model hash is the SHA-256 of everything
    after the header (the tensor data: what A1111 and the additional-networks extension hash
    when the key is absent), the legacy hash the first 8 hex digits of the SHA-256 of the 64 KiB
    at offset 1 MiB."""
    data = _safetensors_bytes(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header:]).hexdigest(), hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def write_kohya(path: Path, unet: Any, text_encoders: list[Any], settings: Any, base: Any, examples: list[Any],
                provenance: dict[str, Any], steps: int, epochs: int) -> Path:
    from lorakit_lora import __version__

    now = int(time.time())
    folders = Counter(e.image.parent.name or "." for e in examples)
    resolution = f"{settings.resolution}x{settings.resolution}"
    sdxl = base.version == "sdxl"
    text_lr = str(settings.learning_rate) if settings.train_text_encoder else "None"
    metadata = {
        "ss_output_name": provenance.get("name", path.stem),
        "ss_network_module": "networks.lora",
        "ss_network_args": json.dumps({"targets": settings.targets} if settings.targets != "kohya" else {}),
        "ss_network_train_unet_only": str(not settings.train_text_encoder),
        "ss_clip_skip": str(settings.clip_skip) if settings.clip_skip > 1 else "None",
        "ss_max_train_steps": str(steps),
        "ss_unet_lr": str(settings.learning_rate),
        "ss_text_encoder_lr": text_lr,
        "ss_network_dim": str(settings.rank),
        "ss_network_alpha": str(settings.alpha),
        "ss_network_dropout": str(settings.dropout),
        "ss_base_model_version": KOHYA_VERSIONS.get(base.version, base.version),
        "ss_v2": str(base.version == "sd_v2"),
        "ss_v_parameterization": str(base.prediction_type == "v_prediction"),
        "ss_sd_model_name": Path(base.source).name,
        "ss_resolution": f"({settings.resolution}, {settings.resolution})",
        "ss_enable_bucket": str(settings.bucketing),
        "ss_learning_rate": str(settings.learning_rate),
        "ss_lr_scheduler": settings.lr_scheduler,
        "ss_optimizer": settings.optimizer,
        "ss_num_train_images": str(sum(e.repeats for e in examples)),
        "ss_num_epochs": str(epochs),
        "ss_steps": str(steps),
        "ss_batch_size_per_device": str(settings.batch_size),
        "ss_gradient_accumulation_steps": str(settings.gradient_accumulation),
        "ss_mixed_precision": provenance.get("mixed_precision", settings.mixed_precision),
        "ss_seed": str(settings.seed),
        "ss_noise_offset": str(settings.noise_offset),
        "ss_min_snr_gamma": str(settings.min_snr_gamma),
        "ss_shuffle_caption": str(settings.shuffle_captions),
        "ss_keep_tokens": str(settings.keep_tokens),
        "ss_caption_dropout_rate": str(settings.caption_dropout),
        "ss_training_comment": f"trained with lorakit {__version__}",
        "ss_tag_frequency": json.dumps(tag_frequency(examples), ensure_ascii=False),
        "ss_dataset_dirs": json.dumps({name: {"n_repeats": max(e.repeats for e in examples
                                                                 if (e.image.parent.name or ".") == name),
                                              "img_count": count} for name, count in folders.items()}),
        "ss_training_started_at": str(provenance.get("started_at", now)),
        "ss_training_finished_at": str(now),
        "modelspec.sai_model_spec": MODELSPEC_VERSION,
        "modelspec.architecture": architecture(base) + "/lora",
        # as kohya: an SDXL LoRA in SAI names is the Stability AI implementation's, others diffusers'
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models" if sdxl else "diffusers",
        "modelspec.prediction_type": "v" if base.prediction_type == "v_prediction" else "epsilon",
        "modelspec.title": provenance.get("name", path.stem),
        "modelspec.resolution": resolution,
        "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)),
        "lorakit.version": __version__,
        "lorakit.run_tag": provenance.get("tag", ""),
        "lorakit.lint_summary": json.dumps(provenance.get("lint_summary", {})),
        "lorakit.allow_lint_errors": str(bool(provenance.get("allow_lint_errors", False))),
        "lorakit.caption_sha256": caption_hash([e.caption for e in examples]),
    }
    if settings.clip_skip > 1:
        metadata["modelspec.encoder_layer"] = str(settings.clip_skip)
    tensors = kohya_tensors(unet, text_encoders, settings.alpha, sdxl=sdxl)
    metadata["sshs_model_hash"], metadata["sshs_legacy_hash"] = addnet_hashes(tensors, metadata)
    atomic_write_bytes(path, _safetensors_bytes(tensors, metadata))
    return path

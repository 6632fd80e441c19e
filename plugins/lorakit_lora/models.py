"""Loading the base model a LoRA is trained on: a diffusers folder, a hub id in the local cache,
or a single-file `.safetensors` checkpoint (loaded offline: lorakit_lora.architectures). Pickle
checkpoints (.ckpt, .pt, .bin) can run code when loaded: refused unless allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.errors import ConfigError
from lora_core.toolkit.hub import PICKLE_SUFFIXES, refuse_pickle


@dataclass
class BaseModel:
    """The parts training needs, and what kind of model they make."""

    source: str
    tokenizer: Any
    text_encoder: Any
    vae: Any
    unet: Any
    noise_scheduler: Any
    version: str  # "sd_v1", "sd_v2" (by the text encoder width) or "sdxl"
    prediction_type: str  # "epsilon" or "v_prediction"
    tokenizer_2: Any = None  # SDXL: the second (OpenCLIP bigG) tokenizer and text encoder
    text_encoder_2: Any = None

    @property
    def tokenizers(self) -> list[Any]:
        return [self.tokenizer] + ([self.tokenizer_2] if self.tokenizer_2 is not None else [])

    @property
    def text_encoders(self) -> list[Any]:
        return [self.text_encoder] + ([self.text_encoder_2] if self.text_encoder_2 is not None else [])

    @property
    def modules(self) -> list[Any]:
        return [*self.text_encoders, self.vae, self.unet]


def check_source(base: str, allow_pickle: bool) -> None:
    if not base:
        raise ConfigError("[train] base-model is not set: a diffusers folder, a hub id, or a .safetensors file")
    path = Path(base).expanduser()
    refuse_pickle(base, allow_pickle)
    if path.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES) and not path.is_file():
        raise ConfigError(f"[train] base-model {base!r}: no such file")


def load_base_model(base: str, allow_pickle: bool = False, config_folder: str | None = None,
                    prediction_type: str = "auto") -> BaseModel:
    """Load the diffusers components of `base` (fp32; the trainer casts). `prediction_type` other
    than "auto" overrides what the model's scheduler config says (kohya's --v_parameterization)."""
    check_source(base, allow_pickle)
    path = Path(base).expanduser()
    if path.is_file():
        model = _from_single_file(path, config_folder, allow_pickle)
    elif path.is_dir() and not (path / "model_index.json").is_file():
        raise ConfigError(f"[train] base-model {base!r}: a folder without model_index.json is not a diffusers model")
    else:
        if path.is_dir():
            _refuse_pickled_components(path, allow_pickle)
        model = _from_pretrained(str(path) if path.is_dir() else base)
    if prediction_type != "auto" and prediction_type != model.prediction_type:
        model.noise_scheduler = model.noise_scheduler.from_config(model.noise_scheduler.config,
                                                                  prediction_type=prediction_type)
        model.prediction_type = prediction_type
    return model


def _refuse_pickled_components(folder: Path, allow_pickle: bool) -> None:
    """A diffusers folder whose component has only pickled weights (`diffusion_pytorch_model.bin`,
    `pytorch_model.bin`) is refused with the same line as a `.ckpt` file, before any loader
    unpickles it (or fails to, deep in torch)."""
    for component in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [p for p in component.iterdir() if p.is_file()]
        if any(p.suffix.lower() == ".safetensors" for p in files):
            continue
        for weights in files:
            if weights.suffix.lower() in PICKLE_SUFFIXES:
                refuse_pickle(weights, allow_pickle)


def _from_pretrained(source: str) -> BaseModel:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from lora_core.toolkit.hub import load_pretrained

    who, probe = "[train] base-model", "model_index.json"  # every diffusers model folder has one

    def load(loader: Any, **kwargs: Any) -> Any:
        return load_pretrained(loader, source, who, probe_file=probe, **kwargs)

    index = load(_read_index)
    tokenizer = load(CLIPTokenizer.from_pretrained, subfolder="tokenizer")
    text_encoder = load(CLIPTextModel.from_pretrained, subfolder="text_encoder")
    vae = load(AutoencoderKL.from_pretrained, subfolder="vae")
    unet = load(UNet2DConditionModel.from_pretrained, subfolder="unet")
    scheduler = load(DDPMScheduler.from_pretrained, subfolder="scheduler")
    base = _assemble(source, tokenizer, text_encoder, vae, unet, scheduler)
    if "text_encoder_2" in index:
        from transformers import CLIPTextModelWithProjection

        base.tokenizer_2 = load(CLIPTokenizer.from_pretrained, subfolder="tokenizer_2")
        base.text_encoder_2 = load(CLIPTextModelWithProjection.from_pretrained, subfolder="text_encoder_2")
        base.version = "sdxl"
    return base


def _read_index(source: str) -> dict[str, Any]:
    import json

    local = Path(source)
    if local.is_dir():
        return json.loads((local / "model_index.json").read_text(encoding="utf-8"))
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(source, "model_index.json")).read_text(encoding="utf-8"))


def _from_single_file(path: Path, config_folder: str | None, allow_pickle: bool) -> BaseModel:
    from diffusers import DDPMScheduler

    from lorakit_lora.architectures import load_single_file

    pipeline = load_single_file(path, config_folder, allow_pickle)
    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    base = _assemble(str(path), pipeline.tokenizer, pipeline.text_encoder, pipeline.vae, pipeline.unet, scheduler)
    if getattr(pipeline, "text_encoder_2", None) is not None:
        base.tokenizer_2, base.text_encoder_2, base.version = pipeline.tokenizer_2, pipeline.text_encoder_2, "sdxl"
    return base


def _assemble(source: str, tokenizer: Any, text_encoder: Any, vae: Any, unet: Any, scheduler: Any) -> BaseModel:
    width = getattr(text_encoder.config, "hidden_size", 768)
    version = "sd_v2" if width == 1024 else "sd_v1"
    prediction = scheduler.config.get("prediction_type", "epsilon")
    return BaseModel(source, tokenizer, text_encoder, vae, unet, scheduler, version, prediction)

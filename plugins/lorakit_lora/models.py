"""Loading the base model a LoRA is trained on: a diffusers folder, a hub id in the local cache,
or a single-file `.safetensors` checkpoint (loaded offline against a diffusers-layout config
folder). Pickle checkpoints (.ckpt, .pt, .bin) can run code when loaded: refused unless allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.errors import ConfigError, PluginError
from lora_core.hub import PICKLE_SUFFIXES


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
    if path.suffix.lower() in PICKLE_SUFFIXES and not allow_pickle:
        raise PluginError(f"{base}: a pickle checkpoint can run arbitrary code when loaded; convert it to "
                          ".safetensors, or pass --allow-pickle if you trust its source")
    if path.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES) and not path.is_file():
        raise ConfigError(f"[train] base-model {base!r}: no such file")


def load_base_model(base: str, allow_pickle: bool = False, config_folder: str | None = None) -> BaseModel:
    """Load the diffusers components of `base` (fp32; the trainer casts)."""
    check_source(base, allow_pickle)
    path = Path(base).expanduser()
    if path.is_file():
        return _from_single_file(path, config_folder)
    if path.is_dir() and not (path / "model_index.json").is_file():
        raise ConfigError(f"[train] base-model {base!r}: a folder without model_index.json is not a diffusers model")
    return _from_pretrained(str(path) if path.is_dir() else base)


def _from_pretrained(source: str) -> BaseModel:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from lora_core.hub import load_pretrained

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


def _from_single_file(path: Path, config_folder: str | None) -> BaseModel:
    """A single checkpoint file, offline: diffusers reads the architecture from `config_folder`
    (a diffusers-layout folder with configs and tokenizer files; weights are not needed)."""
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    if not config_folder:
        config_folder = str(_known_architecture_folder(path))
    if (Path(config_folder) / "text_encoder_2").exists():
        raise PluginError(f"{path}: SDXL single-file checkpoints are not supported yet; convert it to a diffusers "
                          "folder (diffusers' StableDiffusionXLPipeline.from_single_file + save_pretrained) and "
                          "point [train] base-model at that folder")
    try:
        pipeline = StableDiffusionPipeline.from_single_file(str(path), config=config_folder, local_files_only=True,
                                                            safety_checker=None, requires_safety_checker=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise PluginError(f"{path}: could not be loaded as a Stable Diffusion checkpoint against "
                          f"{config_folder} ({str(exc).splitlines()[0][:160]})") from None
    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    return _assemble(str(path), pipeline.tokenizer, pipeline.text_encoder, pipeline.vae, pipeline.unet, scheduler)


def _known_architecture_folder(path: Path) -> Path:
    """The config folder lorakit writes itself for an SD 1.x / 2.x checkpoint (no hub needed)."""
    import os

    from safetensors import safe_open

    from lorakit_lora.architectures import detect, write_config_folder

    try:
        with safe_open(str(path), "pt") as fh:
            keys = set(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise PluginError(f"{path}: not a readable .safetensors file ({str(exc).splitlines()[0][:160]})") from None
    architecture = detect(keys)
    if architecture is None:
        raise ConfigError(f"{path}: not a Stable Diffusion 1.x/2.x checkpoint lorakit knows (SDXL single files are "
                          "not supported yet: use a diffusers folder); for another SD 1.x/2.x variant set [train] "
                          "base-model-config to a diffusers folder of its architecture (configs suffice)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lorakit" / "architectures"
    folder = cache / architecture
    if not (folder / "model_index.json").is_file():
        write_config_folder(folder, architecture)
    return folder


def _assemble(source: str, tokenizer: Any, text_encoder: Any, vae: Any, unet: Any, scheduler: Any) -> BaseModel:
    width = getattr(text_encoder.config, "hidden_size", 768)
    version = "sd_v2" if width == 1024 else "sd_v1"
    prediction = scheduler.config.get("prediction_type", "epsilon")
    return BaseModel(source, tokenizer, text_encoder, vae, unet, scheduler, version, prediction)

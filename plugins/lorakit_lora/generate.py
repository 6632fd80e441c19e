"""`lorakit generate`: render a prompt with LoRAs the way people will use them, A1111 syntax
included: `"cybrpnk, neon alley <lora:cyberpunk:0.7>"` loads `cyberpunk.safetensors` at 0.7.

`<lora:NAME:WEIGHT>` tags are removed from the prompt; NAME is a file path, or a file name looked
up (with or without `.safetensors`) in the `--lora-dir` folders. Both the diffusers and the
kohya/A1111 layouts load. Images are PNGs with the generation parameters in a `parameters` text
chunk (the A1111 convention), each written atomically.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.errors import ConfigError, PluginError

_LORA_TAG = re.compile(r"<lora:([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
_ADAPTER_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass
class LoraUse:
    name: str
    weight: float
    path: Path | None = None

    @property
    def adapter(self) -> str:
        return _ADAPTER_NAME.sub("_", Path(self.name).stem) or "lora"


@dataclass
class ParsedPrompt:
    text: str
    loras: list[LoraUse] = field(default_factory=list)


def parse_prompt(prompt: str) -> ParsedPrompt:
    """Split `<lora:name:weight>` tags from the text (weight defaults to 1.0)."""
    loras = []
    for match in _LORA_TAG.finditer(prompt):
        raw = (match.group(2) or "1").strip()
        try:
            weight = float(raw)
        except ValueError:
            raise ConfigError(f"<lora:{match.group(1)}:{raw}>: the weight must be a number") from None
        loras.append(LoraUse(match.group(1).strip(), weight))
    text = re.sub(r"\s{2,}", " ", _LORA_TAG.sub("", prompt)).strip().strip(",").strip()
    return ParsedPrompt(text, loras)


def find_lora(name: str, folders: list[Path]) -> Path:
    candidates = [Path(name).expanduser()]
    for folder in folders:
        candidates += [folder / name, folder / f"{name}.safetensors"]
        candidates += sorted(folder.glob(f"*/{name}.safetensors"))  # run folders: runs/<name>-<tag>/<name>.safetensors
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix.lower() != ".safetensors":
                raise PluginError(f"<lora:{name}>: {candidate} is not a .safetensors file (pickle files are refused)")
            return candidate
    where = ", ".join(str(f) for f in folders) or "the current folder"
    raise ConfigError(f"<lora:{name}>: no {name}.safetensors in {where} (use --lora-dir, or give a path)")


def load_pipeline(base_model: str, device: str, dtype: str, config_folder: str | None = None,
                  allow_pickle: bool = False) -> Any:
    from lora_core.toolkit.devices import resolve_device, resolve_dtype
    from lora_core.toolkit.hub import load_pretrained, refuse_pickle

    target = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, target)
    path = Path(base_model).expanduser()
    refuse_pickle(base_model, allow_pickle)
    if path.is_file():  # SD 1.x/2.x or SDXL, read offline against the architecture its keys show
        from lorakit_lora.architectures import load_single_file

        pipeline = load_single_file(path, config_folder, allow_pickle, dtype=torch_dtype)
    else:  # SD 1.x/2.x or SDXL: the class comes from the model's model_index.json
        from diffusers import DiffusionPipeline

        pipeline = load_pretrained(DiffusionPipeline.from_pretrained, base_model, "--base-model",
                                   probe_file="model_index.json", dtype=torch_dtype)
        if getattr(pipeline, "safety_checker", None) is not None:
            pipeline.safety_checker = None  # checking a LoRA's output means seeing it
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(target)


def apply_loras(pipeline: Any, loras: list[LoraUse]) -> None:
    names = []
    for lora in loras:
        if lora.adapter in names:
            raise ConfigError(f"<lora:{lora.name}> is used twice in the prompt")
        try:
            pipeline.load_lora_weights(str(lora.path), adapter_name=lora.adapter)
        except Exception as exc:
            detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise PluginError(f"{lora.path}: not a LoRA this pipeline can load ({detail})") from None
        present = {name for adapters in pipeline.get_list_adapters().values() for name in adapters}
        if lora.adapter not in present:  # loaded without error, but not one key matched a module
            raise PluginError(f"{lora.path}: holds no LoRA weights for this pipeline's modules (a LoRA for another "
                              "architecture, or not a LoRA)")
        names.append(lora.adapter)
    if names:
        pipeline.set_adapters(names, adapter_weights=[lora.weight for lora in loras])


def generate(prompt: str, base_model: str, output: Path, lora_dirs: list[Path], count: int = 1, steps: int = 30,
             guidance: float = 7.0, seed: int = 0, width: int | None = None, height: int | None = None,
             negative_prompt: str = "", device: str = "auto", dtype: str = "auto",
             config_folder: str | None = None, allow_pickle: bool = False) -> list[Path]:
    import torch
    from PIL.PngImagePlugin import PngInfo

    parsed = parse_prompt(prompt)
    for lora in parsed.loras:
        lora.path = find_lora(lora.name, lora_dirs)
    pipeline = load_pipeline(base_model, device, dtype, config_folder, allow_pickle)
    apply_loras(pipeline, parsed.loras)
    size = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    width, height = width or size, height or size
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(count):
        generator = torch.Generator().manual_seed(seed + index)
        image = pipeline(parsed.text, negative_prompt=negative_prompt or None, num_inference_steps=steps,
                         guidance_scale=guidance, generator=generator, width=width, height=height).images[0]
        info = PngInfo()
        info.add_text("parameters", f"{prompt}\nNegative prompt: {negative_prompt}\nSteps: {steps}, CFG scale: "
                                    f"{guidance}, Seed: {seed + index}, Size: {width}x{height}, Model: "
                                    f"{Path(base_model).name}")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", pnginfo=info)
        path = output / f"{seed + index:06d}.png"
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    return written

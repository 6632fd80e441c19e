"""The `blip` captioner: Salesforce BLIP image captioning through transformers.

    lorakit caption data/ --captioner blip                       # blip-image-captioning-large
    lorakit caption data/ --captioner blip --model base          # the base checkpoint
    lorakit caption data/ --captioner blip --model ./my-blip     # a local folder
    lorakit caption data/ --captioner blip --prompt "a picture of"

torch and transformers are imported when the captioner is created, never when lorakit loads its
plugins (`pip install 'lorakit[caption]'`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl

MODELS = {
    "large": "Salesforce/blip-image-captioning-large",
    "base": "Salesforce/blip-image-captioning-base",
}
DEFAULT_MODEL = MODELS["large"]


def load_pretrained(loader: Callable[..., Any], model_id: str, captioner: str, **kwargs: Any) -> Any:
    """`loader(model_id)`, turning a missing model into one line that says how to provide it."""
    local = Path(model_id).expanduser()
    if local.exists() and not local.is_dir():
        raise PluginError(f"captioner {captioner}: --model {model_id} is a file; give the model folder")
    if not local.is_dir():
        _require_reachable(model_id, captioner)
    try:
        return loader(str(local) if local.is_dir() else model_id, **kwargs)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True")
        where = "is not in the local Hugging Face cache and the hub is offline" if offline else "could not be loaded"
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise PluginError(f"captioner {captioner}: model {model_id!r} {where} ({detail}); download it once, or pass "
                          f"--model /path/to/folder") from None


def _require_reachable(model_id: str, captioner: str) -> None:
    """A hub id that is not cached needs the hub: find out in two seconds, not after the
    minutes of connection retries a blocked network costs."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return  # transformers fails at once, with the cache-only message
    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return  # cached: no network needed
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=2).close()
    except OSError:
        raise PluginError(f"captioner {captioner}: model {model_id!r} is not in the local Hugging Face cache and "
                          f"{endpoint.hostname} cannot be reached; download it once, or pass --model /path/to/folder") \
            from None


class TransformersCaptioner:
    """Shared body of the transformers captioners: import on use, device and dtype rules, loading
    with one-line errors, batched generation. Subclasses name the classes and trim the output."""

    takes_prompt = True
    name = ""
    models: dict[str, str] = {}
    default_model = ""
    processor_class = ""  # transformers class names, imported when the captioner is created
    model_class = ""

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 40, num_beams: int = 3) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise PluginError(f"captioner {self.name} needs torch and transformers: pip install 'lorakit[caption]' "
                              f"({exc})") from None
        from lora_core.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model_id = self.models.get(model or "", model or self.default_model)
        processor_class = getattr(transformers, self.processor_class)
        model_class = getattr(transformers, self.model_class)
        self.processor = load_pretrained(processor_class.from_pretrained, self.model_id, self.name)
        self.model = load_pretrained(model_class.from_pretrained, self.model_id, self.name,
                                     dtype=self.dtype).to(self.device).eval()
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams

    def caption(self, items: list[Any], prompt: str | None = None) -> list[str]:
        images = [item.load() for item in items]
        text = [prompt] * len(images) if prompt else None
        inputs = self.processor(images=images, text=text, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)
        captions = [c.strip() for c in self.processor.batch_decode(self.new_tokens(out, inputs),
                                                                     skip_special_tokens=True)]
        return self.trim(captions, prompt)

    def new_tokens(self, out: Any, inputs: Any) -> Any:
        """The generated ids to decode (all of them, unless the model repeats its input)."""
        return out

    def trim(self, captions: list[str], prompt: str | None) -> list[str]:
        return captions


class BlipCaptioner(TransformersCaptioner):
    name = "blip"
    models = MODELS
    default_model = DEFAULT_MODEL
    processor_class = "BlipProcessor"
    model_class = "BlipForConditionalGeneration"

    def trim(self, captions: list[str], prompt: str | None) -> list[str]:
        if not prompt:
            return captions
        lowered = prompt.strip().lower()  # BLIP continues the prompt: keep only what it added
        return [c[len(lowered):].strip() if c.lower().startswith(lowered) else c for c in captions]


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("blip", BlipCaptioner, default_model=DEFAULT_MODEL, takes_prompt=True,
             description="Salesforce BLIP (large; `--model base` or a folder) via transformers")

"""The `blip` captioner: Salesforce BLIP image captioning through transformers.

    lorakit caption data/ --captioner blip                       # blip-image-captioning-large
    lorakit caption data/ --captioner blip --model base          # the base checkpoint
    lorakit caption data/ --captioner blip --model ./my-blip     # a local folder
    lorakit caption data/ --captioner blip --prompt "a picture of"

torch and transformers are imported when the captioner is created, never when lorakit loads its
plugins (`pip install 'lorakit[caption]'`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl
from lora_core.toolkit.hub import load_pretrained

#: What this plugin needs beyond the core install: `lorakit plugins` says which is missing and how to
#: install it (checked without importing anything).
REQUIRES = ("torch", "transformers")
INSTALL = "pip install 'lorakit[caption]'"

MODELS = {
    "large": "Salesforce/blip-image-captioning-large",
    "base": "Salesforce/blip-image-captioning-base",
}
DEFAULT_MODEL = MODELS["large"]


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
        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model_id = self.models.get(model or "", model or self.default_model)
        processor_class = getattr(transformers, self.processor_class)
        model_class = getattr(transformers, self.model_class)
        who = f"captioner {self.name}"
        processor = load_pretrained(processor_class.from_pretrained, self.model_id, who)
        model_object = load_pretrained(model_class.from_pretrained, self.model_id, who, dtype=self.dtype)
        self._adopt(processor, model_object, max_new_tokens, num_beams)

    @classmethod
    def from_parts(cls, processor: Any, model: Any, device: str = "auto", dtype: str = "auto",
                   max_new_tokens: int = 40, num_beams: int = 3) -> TransformersCaptioner:
        """A captioner around an already built model and processor (benchmarks, notebooks)."""
        import torch

        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self = cls.__new__(cls)
        self.torch, self.model_id = torch, type(model).__name__
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._adopt(processor, model.to(dtype=self.dtype), max_new_tokens, num_beams)
        return self

    def _adopt(self, processor: Any, model: Any, max_new_tokens: int, num_beams: int) -> None:
        self.processor, self.model = processor, model.to(self.device).eval()
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams

    def prepare(self, item: Any) -> Any:
        """Decode and preprocess one image (CPU work, run in DataLoader workers)."""
        return self.processor.image_processor(images=item.load(), return_tensors="pt")["pixel_values"][0]

    def caption(self, items: list[Any], prompt: str | None = None) -> list[str]:
        return self.caption_prepared([self.prepare(item) for item in items], prompt)

    def caption_prepared(self, pixels: list[Any], prompt: str | None = None) -> list[str]:
        torch = self.torch
        inputs = {"pixel_values": torch.stack(pixels).to(self.device, self.dtype, non_blocking=True)}
        if prompt:
            inputs.update({k: v.to(self.device) for k, v in self.text_inputs([prompt] * len(pixels)).items()})
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)
        captions = [c.strip() for c in self.processor.batch_decode(self.new_tokens(out, inputs),
                                                                     skip_special_tokens=True)]
        return self.trim(captions, prompt)

    def text_inputs(self, prompts: list[str]) -> dict[str, Any]:
        """Token ids of the prompts, as the model's processor would make them."""
        encoded = self.processor.tokenizer(prompts, return_tensors="pt", padding=True)
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

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

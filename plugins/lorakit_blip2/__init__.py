"""The `blip2` captioner: Salesforce BLIP-2 (OPT or Flan-T5 language model) through transformers.

    lorakit caption data/ --captioner blip2                        # blip2-opt-2.7b
    lorakit caption data/ --captioner blip2 --model flan-t5-xl      # a Flan-T5 variant
    lorakit caption data/ --captioner blip2 --prompt "Question: what art style is this? Answer:"

Decoder-only language models (OPT) repeat the prompt in their output: only the new tokens are
kept. torch and transformers are imported when the captioner is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl

MODELS = {
    "opt-2.7b": "Salesforce/blip2-opt-2.7b",
    "opt-6.7b": "Salesforce/blip2-opt-6.7b",
    "flan-t5-xl": "Salesforce/blip2-flan-t5-xl",
    "flan-t5-xxl": "Salesforce/blip2-flan-t5-xxl",
}
DEFAULT_MODEL = MODELS["opt-2.7b"]


class Blip2Captioner:
    takes_prompt = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 40, num_beams: int = 3) -> None:
        try:
            import torch
            from transformers import Blip2ForConditionalGeneration, Blip2Processor
        except ImportError as exc:
            raise PluginError(f"captioner blip2 needs torch and transformers: pip install 'lorakit[caption]' ({exc})") \
                from None
        from lorakit_blip import load_pretrained

        from lora_core.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model_id = MODELS.get(model or "", model or DEFAULT_MODEL)
        self.processor = load_pretrained(Blip2Processor.from_pretrained, self.model_id, "blip2")
        self.model = load_pretrained(Blip2ForConditionalGeneration.from_pretrained, self.model_id, "blip2",
                                     dtype=self.dtype).to(self.device).eval()
        text_config = self.model.config.text_config
        self.decoder_only = not getattr(text_config, "is_encoder_decoder", False)
        if getattr(text_config, "bos_token_id", None) is None:
            # Flan-T5 configs have no bos; BLIP-2 builds its start tokens from it (transformers 5.2x).
            text_config.bos_token_id = text_config.pad_token_id
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams

    def caption(self, items: list[Any], prompt: str | None = None) -> list[str]:
        images = [item.load() for item in items]
        text = [prompt] * len(images) if prompt else None
        inputs = self.processor(images=images, text=text, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)
        if self.decoder_only and "input_ids" in inputs:
            out = out[:, inputs["input_ids"].shape[1]:]  # the prompt (and image tokens) come back first
        return [c.strip() for c in self.processor.batch_decode(out, skip_special_tokens=True)]


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("blip2", Blip2Captioner, default_model=DEFAULT_MODEL, takes_prompt=True,
             description="Salesforce BLIP-2 (opt-2.7b; flan-t5 variants or a folder) via transformers")

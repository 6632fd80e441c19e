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

from lorakit_blip import TransformersCaptioner

from lora_core.hookspecs import hookimpl

#: What this plugin needs beyond the core install: `lorakit plugins` says which is missing and how to
#: install it (checked without importing anything).
REQUIRES = ("torch", "transformers")
INSTALL = "pip install 'lorakit[caption]'"

MODELS = {
    "opt-2.7b": "Salesforce/blip2-opt-2.7b",
    "opt-6.7b": "Salesforce/blip2-opt-6.7b",
    "flan-t5-xl": "Salesforce/blip2-flan-t5-xl",
    "flan-t5-xxl": "Salesforce/blip2-flan-t5-xxl",
}
DEFAULT_MODEL = MODELS["opt-2.7b"]


class Blip2Captioner(TransformersCaptioner):
    name = "blip2"
    models = MODELS
    default_model = DEFAULT_MODEL
    processor_class = "Blip2Processor"
    model_class = "Blip2ForConditionalGeneration"

    def _adopt(self, processor: Any, model: Any, max_new_tokens: int, num_beams: int) -> None:
        super()._adopt(processor, model, max_new_tokens, num_beams)
        text_config = self.model.config.text_config
        self.decoder_only = not getattr(text_config, "is_encoder_decoder", False)
        if getattr(text_config, "bos_token_id", None) is None:
            # Flan-T5 configs have no bos; BLIP-2 builds its start tokens from it (transformers 5.2x).
            text_config.bos_token_id = text_config.pad_token_id

    def text_inputs(self, prompts: list[str]) -> dict[str, Any]:
        # As Blip2Processor does: the query-token placeholders go in front of the prompt, bos included.
        encoded = self.processor.tokenizer(prompts, return_tensors="pt", padding=True)
        count = self.processor.num_query_tokens or 0
        image_id = self.processor.tokenizer.convert_tokens_to_ids(self.processor.image_token.content)
        ids = encoded["input_ids"]
        image_ids = self.torch.full((ids.shape[0], count), image_id, dtype=ids.dtype)
        mask = self.torch.ones_like(image_ids)
        return {"input_ids": self.torch.cat([image_ids, ids], 1),
                "attention_mask": self.torch.cat([mask, encoded["attention_mask"]], 1)}

    def new_tokens(self, out: Any, inputs: Any) -> Any:
        if self.decoder_only and "input_ids" in inputs:
            return out[:, inputs["input_ids"].shape[1]:]  # the prompt (and image tokens) come back first
        return out


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("blip2", Blip2Captioner, default_model=DEFAULT_MODEL, takes_prompt=True, answers_questions=True,
             description="Salesforce BLIP-2 (opt-2.7b; flan-t5 variants or a folder) via transformers")

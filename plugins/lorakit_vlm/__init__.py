"""The `vlm` captioner: vision-language chat models through transformers' `AutoModelForImageTextToText`
and their processor's chat template (Qwen2.5-VL / Qwen3-VL, LLaVA-family such as JoyCaption,
SmolVLM, Gemma 3, Idefics), and Florence-2 through its task prompts.

    lorakit caption data/ --captioner vlm                                  # Qwen2.5-VL-3B-Instruct
    lorakit caption data/ --captioner vlm --model joycaption -O form=prose --dtype bf16
    lorakit caption data/ --captioner vlm --model florence2-large          # <MORE_DETAILED_CAPTION>
    lorakit caption data/ --captioner wd-tagger --captioner vlm --vote join

The default prompt comes from the dataset (toolkit.caption_context): the form the target model
expects (`-O form=tags|sentence|prose`), the trigger standing for the subject's fixed traits, the
style left out; `--prompt` replaces it, `-O system=...` adds a system message (JoyCaption's
"You are a helpful image captioner."). Decoding is deterministic (greedy; `-O num_beams=N`),
`max_new_tokens` 160; batches are left-padded; answers are cleaned of chat wrappers. Models that
need `trust_remote_code` are not loaded: their code would run unreviewed.

torch and transformers are imported when the captioner is created (`pip install 'lorakit[caption]'`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl
from lora_core.toolkit.answers import clean_answer
from lora_core.toolkit.caption_context import CaptionContext, default_prompt
from lora_core.toolkit.hub import load_pretrained

REQUIRES = ("torch", "transformers")
INSTALL = "pip install 'lorakit[caption]'"

MODELS = {
    "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen3-vl-4b": "Qwen/Qwen3-VL-4B-Instruct",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
    "joycaption": "fancyfeast/llama-joycaption-beta-one-hf-llava",
    "smolvlm": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
    "gemma3-4b": "google/gemma-3-4b-it",
    "florence2-base": "florence-community/Florence-2-base",
    "florence2-large": "florence-community/Florence-2-large",
}
DEFAULT_MODEL = MODELS["qwen2.5-vl-3b"]
#: Florence-2 answers task prompts, not instructions: the task for each caption form.
FLORENCE_TASKS = {"tags": "<CAPTION>", "sentence": "<DETAILED_CAPTION>", "prose": "<MORE_DETAILED_CAPTION>"}


class VlmCaptioner:
    takes_prompt = True

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto", form: str | None = None,
                 max_new_tokens: int = 160, min_new_tokens: int = 0, num_beams: int = 1, system: str | None = None,
                 context: CaptionContext | None = None) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise PluginError(f"captioner vlm needs torch and transformers: {INSTALL} ({exc})") from None
        for name, value, low in (("max_new_tokens", max_new_tokens, 1), ("min_new_tokens", min_new_tokens, 0),
                                 ("num_beams", num_beams, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise PluginError(f"captioner vlm: -O {name}={value!r}: expected a whole number >= {low}")
        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model_id = MODELS.get(model or "", model or DEFAULT_MODEL)
        who = "captioner vlm"
        processor = load_pretrained(transformers.AutoProcessor.from_pretrained, self.model_id, who)
        loaded = load_pretrained(transformers.AutoModelForImageTextToText.from_pretrained, self.model_id, who,
                                 dtype=self.dtype)
        self._adopt(processor, loaded, context, form, max_new_tokens, min_new_tokens, num_beams, system)

    @classmethod
    def from_parts(cls, processor: Any, model: Any, device: str = "auto", dtype: str = "auto",
                   **options: Any) -> VlmCaptioner:
        """A captioner around an already built model and processor (benchmarks, notebooks)."""
        import torch

        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self = cls.__new__(cls)
        self.torch, self.model_id = torch, type(model).__name__
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self._adopt(processor, model.to(dtype=self.dtype), options.pop("context", None), options.pop("form", None),
                    options.pop("max_new_tokens", 160), options.pop("min_new_tokens", 0), options.pop("num_beams", 1),
                    options.pop("system", None))
        return self

    def _adopt(self, processor: Any, model: Any, context: CaptionContext | None, form: str | None,
               max_new_tokens: int, min_new_tokens: int, num_beams: int, system: str | None) -> None:
        self.processor, self.model = processor, model.to(self.device).eval()
        self.context = context or CaptionContext()
        self.florence = getattr(model.config, "model_type", "") == "florence2"
        self.encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None and not self.encoder_decoder:
            tokenizer.padding_side = "left"  # a batch's prompts end where generation starts
        chosen_form = form or self.context.form or "sentence"
        if self.florence:
            if chosen_form not in FLORENCE_TASKS:
                raise PluginError(f"captioner vlm: -O form={chosen_form!r}: expected one of "
                                  f"{', '.join(FLORENCE_TASKS)}")
            self.default_prompt = FLORENCE_TASKS[chosen_form]
        else:
            if not getattr(processor, "chat_template", None):
                raise PluginError(f"captioner vlm: {self.model_id} has no chat template: not a chat model this "
                                  "captioner can prompt (--model another, or a folder with chat_template.jinja)")
            self.default_prompt = default_prompt(self.context, form)
        self.system = system
        self.generation = {"max_new_tokens": max_new_tokens, "min_new_tokens": min_new_tokens or None,
                           "num_beams": num_beams, "do_sample": False}

    def _texts(self, count: int, prompt: str) -> list[str]:
        if self.florence:
            return [prompt] * count
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]})
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return [text] * count

    def caption(self, items: Sequence[Any], prompt: str | None = None) -> list[str]:
        torch = self.torch
        images = [item.load() for item in items]
        texts = self._texts(len(images), prompt or self.default_prompt)
        batch_images: Any = images if self.florence else [[image] for image in images]
        inputs = self.processor(text=texts, images=batch_images, return_tensors="pt", padding=True)
        inputs = {key: (value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device))
                  for key, value in inputs.items() if hasattr(value, "to")}
        with torch.inference_mode():
            out = self.model.generate(**inputs, **{k: v for k, v in self.generation.items() if v is not None})
        new = out if self.encoder_decoder else out[:, inputs["input_ids"].shape[1]:]
        answers = self.processor.batch_decode(new, skip_special_tokens=True)
        return [clean_answer(answer) for answer in answers]


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("vlm", VlmCaptioner, default_model=DEFAULT_MODEL, takes_prompt=True,
             description="vision-language chat models (Qwen2.5/3-VL, JoyCaption, SmolVLM, Gemma 3; Florence-2) "
                         "via transformers")

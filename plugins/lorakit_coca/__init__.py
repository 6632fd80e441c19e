"""The `coca` captioner: LAION CoCa through open_clip, with lorakit's own decoding.

    lorakit caption data/ --captioner coca                                # ViT-L-14, COCO fine-tuned
    lorakit caption data/ --captioner coca --model ViT-B-32               # the smaller one
    lorakit caption data/ --captioner coca --model ./coca-folder          # open_clip_config.json + weights
    lorakit caption data/ --captioner coca -O decoding=top-p -O top_p=0.9 -O seed=1

`--model` takes a folder in the hub layout (open_clip_config.json + open_clip_model.safetensors),
`hf-hub:ORG/NAME`, `MODEL:TAG` from open_clip's pretrained list, or the shortcuts ViT-L-14 /
ViT-B-32. Options (`-O KEY=VALUE`): decoding = beam (default) | greedy | top-k | top-p,
num_beams, max_new_tokens, min_new_tokens, length_penalty, top_k, top_p, temperature, seed.
open_clip's generate() cannot run beside transformers 5 (it imports removed beam-search classes),
so decoding is done by `lorakit_coca.decoding`. Needs `pip install 'lorakit[coca]'`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl

#: What this plugin needs beyond the core install: `lorakit plugins` says which is missing and how to
#: install it (checked without importing anything).
REQUIRES = ("torch", "open_clip")
INSTALL = "pip install 'lorakit[coca]'"

MODELS = {
    "ViT-L-14": "coca_ViT-L-14:mscoco_finetuned_laion2b_s13b_b90k",
    "ViT-B-32": "coca_ViT-B-32:mscoco_finetuned_laion2b_s13b_b90k",
}
DEFAULT_MODEL = MODELS["ViT-L-14"]
_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def _import_open_clip() -> Any:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise PluginError(f"captioner coca needs torch and open_clip: pip install 'lorakit[coca]' ({exc})") from None
    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise PluginError("captioner coca: open_clip needs torchvision, and torchvision cannot be imported next to "
                          f"this torch ({str(exc).splitlines()[0][:160]}); install the torchvision release built for "
                          "your torch (e.g. torch 2.14.1 with torchvision 0.29.1)") from None
    except RuntimeError as exc:  # e.g. "operator torchvision::nms does not exist": built for another torch
        raise PluginError("captioner coca: torchvision does not match the installed torch "
                          f"({str(exc).splitlines()[0][:160]}); install the torchvision release built for your "
                          "torch (e.g. torch 2.14.1 with torchvision 0.29.1)") from None
    try:
        import open_clip
    except ImportError as exc:
        raise PluginError(f"captioner coca needs open_clip: pip install 'lorakit[coca]' ({exc})") from None
    return open_clip


class CocaCaptioner:
    takes_prompt = False

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 decoding: str = "beam", num_beams: int = 4, max_new_tokens: int = 30, min_new_tokens: int = 3,
                 length_penalty: float = 1.0, top_k: int = 40, top_p: float = 0.9, temperature: float = 1.0,
                 seed: int | None = None) -> None:
        self.settings = self._settings(decoding, max_new_tokens, min_new_tokens, num_beams, length_penalty, top_k,
                                       top_p, temperature, seed)
        open_clip = _import_open_clip()
        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        resolve_dtype(dtype, resolve_device(device))  # refuse fp16 on a CPU before loading anything
        self.model_id = MODELS.get(model or "", model or DEFAULT_MODEL)
        name, pretrained = self._resolve(self.model_id, open_clip)
        built, _, preprocess = self._load(open_clip, name, pretrained)
        self._adopt(built, preprocess, open_clip.get_tokenizer(name), device, dtype)

    @classmethod
    def from_parts(cls, model: Any, preprocess: Any, tokenizer: Any, device: str = "auto", dtype: str = "auto",
                   **settings: Any) -> CocaCaptioner:
        """A captioner around an already built open_clip CoCa (benchmarks, notebooks); `settings`
        are `lorakit_coca.decoding.DecodeSettings` fields (method="greedy", num_beams=...)."""
        self = cls.__new__(cls)
        self.settings, self.model_id = cls._settings(**settings), type(model).__name__
        self._adopt(model, preprocess, tokenizer, device, dtype)
        return self

    @staticmethod
    def _settings(*args: Any, **kwargs: Any) -> Any:
        from lorakit_coca.decoding import DecodeSettings

        try:
            return DecodeSettings(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"captioner coca: {exc}") from None

    def _adopt(self, model: Any, preprocess: Any, tokenizer: Any, device: str, dtype: str) -> None:
        import torch

        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device, self.dtype).eval()
        self.preprocess, self.tokenizer = preprocess, tokenizer
        context = int(getattr(self.model.text, "context_length", 76) or 76)
        if self.settings.max_new_tokens >= context:
            raise PluginError(f"captioner coca: max_new_tokens must be below the model's context length {context}")

    @staticmethod
    def _resolve(model_id: str, open_clip: Any) -> tuple[str, str | None]:
        """open_clip's (model name, pretrained tag) for a folder, an hf-hub id or MODEL:TAG."""
        local = Path(model_id).expanduser()
        if local.is_dir():
            if not (local / "open_clip_config.json").is_file():
                raise PluginError(f"captioner coca: {local} has no open_clip_config.json (the hub layout: "
                                  "open_clip_config.json + open_clip_model.safetensors)")
            return f"local-dir:{local}", None
        if model_id.startswith("hf-hub:"):
            return model_id, None
        name, _, tag = model_id.partition(":")
        if name not in open_clip.list_models():
            known = ", ".join(m for m in open_clip.list_models() if m.startswith("coca")) or "none"
            raise PluginError(f"captioner coca: unknown model {model_id!r}: not a folder, not hf-hub:ID, and "
                              f"{name!r} is not an open_clip model ({known})")
        return name, tag or None

    def _load(self, open_clip: Any, name: str, pretrained: str | None) -> Any:
        from lora_core.toolkit.hub import missing_model, require_reachable

        hub_id = None
        if name.startswith("hf-hub:"):
            hub_id = name[len("hf-hub:"):]
        elif pretrained:
            hub_id = (open_clip.get_pretrained_cfg(name, pretrained) or {}).get("hf_hub", "").strip("/") or None
        if hub_id:
            require_reachable(hub_id, "captioner coca", _WEIGHT_FILES)
        try:
            return open_clip.create_model_and_transforms(name, pretrained=pretrained)
        except (OSError, RuntimeError, ValueError) as exc:
            raise missing_model(self.model_id, "captioner coca", exc) from None

    def prepare(self, item: Any) -> Any:
        return self.preprocess(item.load())

    def caption(self, items: list[Any], prompt: str | None = None) -> list[str]:
        return self.caption_prepared([self.prepare(item) for item in items], prompt)

    def caption_prepared(self, pixels: list[Any], prompt: str | None = None) -> list[str]:
        from lorakit_coca.decoding import decode

        torch = self.torch
        images = torch.stack(pixels).to(self.device, self.dtype, non_blocking=True)
        with torch.inference_mode():
            latent, embeddings = self.model._encode_image(images)

            def step(tokens: Any, rows: Any) -> Any:
                out = self.model(None, tokens, image_latent=latent[rows], image_embs=embeddings[rows],
                                 output_labels=False)
                return out["logits"][:, -1]

            ids = decode(step, len(pixels), self.tokenizer.sot_token_id, self.tokenizer.eot_token_id,
                         self.settings, self.device)
        return [self.tokenizer.decode(row).strip() for row in ids]


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("coca", CocaCaptioner, default_model=DEFAULT_MODEL, takes_prompt=False,
             description="LAION CoCa (ViT-L-14 COCO fine-tuned; ViT-B-32, hf-hub:ID or a folder) via open_clip")

"""CLIP image-text similarity: `lorakit caption --vote clip` (and the semantic lint rules).

One scorer, one loading path: `--clip-model` is a hub id (default openai/clip-vit-large-patch14,
the text encoder family SD 1.x conditions on) or a local folder, loaded with transformers'
`CLIPModel`. Embeddings are computed in the model's dtype on its device and compared in fp32.
Texts longer than CLIP's 77 tokens are truncated, as the diffusion text encoder would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lora_core.errors import PluginError
from lora_core.toolkit.hub import load_pretrained

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "ClipScorer",
]

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"


class ClipScorer:
    """Scores captions against their images with a CLIP model (`score_candidates`)."""

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto") -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise PluginError(f"CLIP scoring needs torch and transformers: pip install 'lorakit[caption]' ({exc})") \
                from None
        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self.torch = torch
        self.model_id = model or DEFAULT_CLIP_MODEL
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        who = "--clip-model"
        self.processor = load_pretrained(transformers.CLIPProcessor.from_pretrained, self.model_id, who)
        self.model = load_pretrained(transformers.CLIPModel.from_pretrained, self.model_id, who,
                                     dtype=self.dtype).to(self.device).eval()

    @classmethod
    def from_parts(cls, processor: Any, model: Any, device: str = "auto", dtype: str = "auto") -> ClipScorer:
        """A scorer around an already built CLIPModel and CLIPProcessor (benchmarks, notebooks)."""
        import torch

        from lora_core.toolkit.devices import resolve_device, resolve_dtype

        self = cls.__new__(cls)
        self.torch, self.model_id, self.processor = torch, type(model).__name__, processor
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device, self.dtype).eval()
        return self

    @staticmethod
    def _pooled(output: Any) -> Any:
        # transformers 5 returns a model output with the projection in pooler_output; 4.x the tensor
        return output.pooler_output if hasattr(output, "pooler_output") else output

    def image_embeddings(self, images: Sequence[Any]) -> Any:
        """L2-normalised fp32 embeddings of PIL images, one row per image."""
        torch = self.torch
        pixels = self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            features = self._pooled(self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype)))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def text_embeddings(self, texts: Sequence[str]) -> Any:
        """L2-normalised fp32 embeddings of texts (truncated at 77 tokens), one row per text."""
        torch = self.torch
        tokens = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=77,
                                          return_tensors="pt")
        with torch.inference_mode():
            features = self._pooled(self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    def score_candidates(self, images: Sequence[Any], candidates: Sequence[Sequence[str]]) -> list[list[float]]:
        """Cosine similarity of each image with each of its candidate captions."""
        if not images:
            return []
        image_vectors = self.image_embeddings(images)
        flat = [text for group in candidates for text in group]
        text_vectors = self.text_embeddings(flat)
        scores, at = [], 0
        for row, group in enumerate(candidates):
            similarities = text_vectors[at:at + len(group)] @ image_vectors[row]
            scores.append([float(s) for s in similarities])
            at += len(group)
        return scores

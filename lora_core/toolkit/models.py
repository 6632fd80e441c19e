"""The model a dataset trains: which text encoder reads its captions, and how much of them.

    >>> model_named("SD1.5").budget, model_named("flux").budget
    (75, 512)
    >>> model_named("Pony").name
    'Pony Diffusion (SDXL)'
    >>> model_named("sdxl").with_token_length(225).budget
    225

A caption's length is a problem only against the model that reads it: SD 1.x and SDXL read 75
CLIP tokens per chunk (kohya's `--max_token_length` 150 or 225 joins two or three chunks), and
trainers drop the rest without a word; FLUX, SD3 and the models with T5 or LLM encoders read
hundreds of tokens. `[dataset] model` pins the model; the trainer configs lorakit reads name it
too (kohya `sdxl`/`v2`/`max_token_length`, ai-toolkit `model.arch`, OneTrainer `model_type`,
SimpleTuner `model_family`): `model_from_trainer` maps their values.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

__all__ = ["MODELS", "TargetModel", "model_from_path", "model_from_trainer", "model_keys", "model_named"]


@dataclass(frozen=True)
class TargetModel:
    """A family of base models, as far as its captions are concerned."""

    key: str  # the value of `[dataset] model`
    name: str
    encoder: str  # what reads the caption
    budget: int  # caption tokens the encoder reads; the rest is not trained
    clip_only: bool  # only CLIP reads the caption (its budget is CLIP tokens, counted exactly)
    tags_native: bool = False  # trained on booru tags: tag captions are its native form

    @property
    def budget_text(self) -> str:
        unit = "CLIP tokens" if self.clip_only else "tokens"
        return f"{self.budget} {unit} ({self.encoder})"

    def with_token_length(self, tokens: int) -> TargetModel:
        """kohya's `--max_token_length` (150, 225): CLIP reads that many tokens in 75-token chunks."""
        if not self.clip_only or tokens <= 0:
            return self
        return dataclasses.replace(self, budget=tokens, encoder=f"{self.encoder}, max_token_length {tokens}")


_CLIP_L = "CLIP ViT-L, 75 tokens per chunk"
MODELS: tuple[TargetModel, ...] = (
    TargetModel("sd1", "SD 1.x", _CLIP_L, 75, True),
    TargetModel("sd2", "SD 2.x", "OpenCLIP ViT-H, 75 tokens per chunk", 75, True),
    TargetModel("sdxl", "SDXL", "CLIP ViT-L + OpenCLIP bigG, 75 tokens per chunk", 75, True),
    TargetModel("pony", "Pony Diffusion (SDXL)", "CLIP ViT-L + OpenCLIP bigG, 75 tokens per chunk", 75, True, True),
    TargetModel("illustrious", "Illustrious / NoobAI (SDXL)", "CLIP ViT-L + OpenCLIP bigG, 75 tokens per chunk", 75,
                True, True),
    TargetModel("sd3", "SD 3 / 3.5", "T5-XXL, 256 tokens (CLIP reads the first 77)", 256, False),
    TargetModel("flux", "FLUX.1 dev / Krea", "T5-XXL, 512 tokens", 512, False),
    TargetModel("flux-schnell", "FLUX.1 schnell", "T5-XXL, 256 tokens", 256, False),
    TargetModel("chroma", "Chroma", "T5-XXL, 512 tokens", 512, False),
    TargetModel("pixart", "PixArt-Sigma", "T5-XXL, 300 tokens", 300, False),
    TargetModel("sana", "Sana", "Gemma 2, 300 tokens", 300, False),
    TargetModel("lumina2", "Lumina 2", "Gemma 2, 256 tokens", 256, False),
    TargetModel("qwen-image", "Qwen-Image", "Qwen2.5-VL, 512 tokens and more", 512, False),
    TargetModel("hidream", "HiDream", "T5-XXL + Llama 3, 128 T5 tokens and more", 128, False),
    TargetModel("wan", "Wan", "umT5, 512 tokens", 512, False),
    TargetModel("long-encoder", "a model with a T5 or LLM text encoder", "a T5 or LLM encoder, 512 tokens", 512,
                False),
)
_BY_KEY = {model.key: model for model in MODELS}

# Other spellings of the keys (trainer config values, common names), compared without case,
# spaces, dots, dashes or underscores.
_ALIASES = {
    "sd1": ["sd15", "sd1", "sdv1", "v1", "sd14", "stablediffusion15", "legacy", "sd", "stablediffusion"],
    "sd2": ["sd2", "sd20", "sd21", "v2", "sdv2", "stablediffusion2", "stablediffusion20", "stablediffusion21"],
    "sdxl": ["sdxl", "xl", "sdxl10", "sdxlbase", "stablediffusionxl", "stablediffusionxl10base", "kolors"],
    "pony": ["pony", "ponyxl", "ponydiffusion", "ponydiffusionv6xl", "ponyv6"],
    "illustrious": ["illustrious", "illustriousxl", "noobai", "noobaixl", "noob", "animagine", "animaginexl"],
    "sd3": ["sd3", "sd35", "stablediffusion3", "stablediffusion35", "sd3medium", "sd35large", "v3"],
    "flux": ["flux", "flux1", "fluxdev", "flux1dev", "fluxdev1", "krea", "fluxkrea", "flux1kreadev", "fluxkontext",
             "kontext", "flex1", "flex", "flex2"],
    "flux-schnell": ["fluxschnell", "flux1schnell", "schnell"],
    "chroma": ["chroma", "chroma1"],
    "pixart": ["pixart", "pixartsigma", "pixartalpha"],
    "sana": ["sana"],
    "lumina2": ["lumina2", "lumina", "luminaimage2"],
    "qwen-image": ["qwenimage", "qwen", "qwenimageedit"],
    "hidream": ["hidream", "hidreami1"],
    "wan": ["wan", "wan21", "wan22", "wan2", "hunyuan", "hunyuanvideo", "ltxvideo", "ltx"],
    "long-encoder": ["longencoder", "t5", "llm", "krea2", "auraflow", "omnigen", "zimage"],
}
_LOOKUP = {alias: key for key, aliases in _ALIASES.items() for alias in aliases}
_SQUASH = re.compile(r"[\s._\-/]+")


def model_keys() -> list[str]:
    """The values `[dataset] model` takes."""
    return [model.key for model in MODELS]


def model_named(name: str) -> TargetModel | None:
    """The model a key or a common name means (`sd15`, `SDXL`, `pony`, `flux-dev`), or None."""
    squashed = _SQUASH.sub("", str(name).lower())
    key = _LOOKUP.get(squashed, squashed)
    return _BY_KEY.get(key) or _BY_KEY.get(str(name).lower())


# OneTrainer's ModelType values, by prefix.
_ONETRAINER = (("STABLE_DIFFUSION_15", "sd1"), ("STABLE_DIFFUSION_20", "sd2"), ("STABLE_DIFFUSION_21", "sd2"),
               ("STABLE_DIFFUSION_XL", "sdxl"), ("STABLE_DIFFUSION_35", "sd3"), ("STABLE_DIFFUSION_3", "sd3"),
               ("FLUX_DEV", "flux"), ("FLUX_FILL", "flux"), ("FLUX", "flux"), ("PIXART", "pixart"), ("SANA", "sana"),
               ("CHROMA", "chroma"), ("QWEN", "qwen-image"), ("HI_DREAM", "hidream"), ("HUNYUAN", "wan"),
               ("WUERSTCHEN", "long-encoder"))


def model_from_trainer(value: object) -> TargetModel | None:
    """A trainer config's model value: ai-toolkit `arch`, OneTrainer `model_type`, SimpleTuner
    `model_family`, lora-scripts `model_train_type` (`sdxl-lora`), or None when unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for prefix, key in _ONETRAINER:
        if text.upper().startswith(prefix):
            return _BY_KEY[key]
    for suffix in ("-lora", "_lora", "-finetune", "-dreambooth"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)]
    return model_named(text)


_PATH_HINTS = (("pony", "pony"), ("illustrious", "illustrious"), ("noob", "illustrious"), ("animagine", "illustrious"),
               ("schnell", "flux-schnell"), ("krea-2", "long-encoder"), ("krea2", "long-encoder"), ("flux", "flux"),
               ("krea", "flux"), ("chroma", "chroma"),
               ("stable-diffusion-3", "sd3"), ("sd3", "sd3"), ("sdxl", "sdxl"), ("-xl", "sdxl"), ("xl-", "sdxl"),
               ("stable-diffusion-2", "sd2"), ("sd2", "sd2"), ("v1-5", "sd1"), ("sd15", "sd1"), ("sd-1", "sd1"),
               ("stable-diffusion-v1", "sd1"), ("pixart", "pixart"), ("sana", "sana"), ("qwen", "qwen-image"),
               ("hidream", "hidream"), ("lumina", "lumina2"))


def model_from_path(path: object) -> TargetModel | None:
    """A guess from a base model's name or path (`.../ponyDiffusionV6XL.safetensors`,
    `black-forest-labs/FLUX.1-dev`), or None."""
    if not isinstance(path, str) or not path:
        return None
    lowered = path.lower()
    for hint, key in _PATH_HINTS:
        if hint in lowered:
            return _BY_KEY[key]
    return None

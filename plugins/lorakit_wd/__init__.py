"""The `wd-tagger` captioner: WD-family ONNX booru taggers (SmilingWolf's WD v3 ViT / SwinV2 /
ConvNeXt / EVA02, PixAI's ONNX export, JoyTag and other taggers of the same shape).

    lorakit caption data/ --captioner wd-tagger                              # wd-swinv2-tagger-v3
    lorakit caption data/ --captioner wd-tagger --model eva02-large -O general_threshold=0.5
    lorakit caption data/ --captioner wd-tagger --model ./joytag -O mcut=true
    lorakit caption data/ --captioner wd-tagger --captioner openai --vote join   # tags, then a sentence

A model is a folder (or a hub id) holding `model.onnx` and its labels: `selected_tags.csv`
(columns `name`, `category`: 9 rating, 0 general, 4 character) or a plain list (`top_tags.txt`).
The preprocessing follows the model's input: an NHWC input (WD) gets BGR pixels 0-255 unnormalised,
an NCHW input (JoyTag) RGB pixels scaled to 0-1 and normalised with CLIP's mean and std (options
`channels`, `mean`, `std` override); every image is composited on white, padded to a white square
and resized to the input size. Scores outside 0-1 are logits and go through a sigmoid.

Tags: general tags at `general_threshold` (0.35), character tags at `character_threshold` (0.85),
or MCut (`-O mcut=true`: the widest gap in the sorted scores); rating tags dropped unless
`-O rating=true`; `exclude` (comma-separated) dropped; underscores kept or replaced by spaces as
the set's existing captions write them (`underscores=auto`; `keep`/`replace` to pin; kaomoji such
as `^_^` always keep theirs); ordered trigger first, then character tags, then general tags by score.

Runs on the CPU, and with the CUDA provider when onnxruntime-gpu is installed and a GPU is present.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lora_core.errors import PluginError
from lora_core.hookspecs import hookimpl
from lora_core.toolkit.caption_context import CaptionContext, underscore_convention

REQUIRES = ("onnxruntime", "numpy")
INSTALL = "pip install 'lorakit[wd]'"

MODELS = {
    "swinv2": "SmilingWolf/wd-swinv2-tagger-v3",
    "vit": "SmilingWolf/wd-vit-tagger-v3",
    "convnext": "SmilingWolf/wd-convnext-tagger-v3",
    "eva02-large": "SmilingWolf/wd-eva02-large-tagger-v3",
    "vit-large": "SmilingWolf/wd-vit-large-tagger-v3",
    "pixai": "deepghs/pixai-tagger-v0.9-onnx",
}
DEFAULT_MODEL = MODELS["swinv2"]
LABEL_FILES = ("selected_tags.csv", "top_tags.txt", "tags.txt")
RATING, GENERAL, CHARACTER = 9, 0, 4
# Kaomoji keep their underscores whatever the set's convention (SmilingWolf's list).
KAOMOJI = frozenset({"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
                     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"})
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def read_labels(path: Path) -> list[tuple[str, int]]:
    """(tag, category) per model output, from `selected_tags.csv` or a one-tag-a-line list."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"captioner wd-tagger: {path}: cannot read the tag list ({exc})") from None
    if path.suffix.lower() != ".csv":
        return [(line.strip(), GENERAL) for line in text.splitlines() if line.strip()]
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows or "name" not in rows[0]:
        raise PluginError(f"captioner wd-tagger: {path}: expected a CSV with a `name` column (and `category`)")
    labels = []
    for line, row in enumerate(rows, start=2):
        try:
            category = int(row.get("category") or GENERAL)
        except ValueError:
            raise PluginError(f"captioner wd-tagger: {path}:{line}: category {row.get('category')!r} "
                              "is not a number") from None
        labels.append((str(row["name"] or "").strip(), category))
    return labels


def mcut_threshold(scores: Any) -> float:
    """MCut (Largeron et al. 2012): the midpoint of the widest gap between consecutive sorted scores."""
    import numpy as np

    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(ordered) < 2:
        return 0.5
    gaps = ordered[:-1] - ordered[1:]
    at = int(np.argmax(gaps))
    return float((ordered[at] + ordered[at + 1]) / 2)


def _floats(name: str, value: Any) -> tuple[float, float, float]:
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        numbers = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 3 or not all(0 < n < 1e3 or (name == "mean" and n == 0) for n in numbers):
        raise PluginError(f"captioner wd-tagger: -O {name}={value!r}: expected three numbers, e.g. 0.5,0.5,0.5")
    return numbers  # type: ignore[return-value]


class WdTagger:
    """One ONNX tagger session and the tag rules above."""

    takes_prompt = False

    def __init__(self, model: str | None = None, device: str = "auto", dtype: str = "auto",
                 general_threshold: float = 0.35, character_threshold: float = 0.85, mcut: bool = False,
                 rating: bool = False, underscores: str = "auto", exclude: str | Sequence[str] = "",
                 max_tags: int = 0, channels: str = "auto", mean: Any = None, std: Any = None, size: int = 0,
                 context: CaptionContext | None = None) -> None:
        del dtype  # the model's own (float32 inputs)
        try:
            import numpy as np
            import onnxruntime
        except ImportError as exc:
            raise PluginError(f"captioner wd-tagger needs onnxruntime: {INSTALL} ({exc})") from None
        for name, threshold in (("general_threshold", general_threshold), ("character_threshold", character_threshold)):
            if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold <= 1:
                raise PluginError(f"captioner wd-tagger: -O {name}={threshold!r}: expected a number from 0 to 1")
        if underscores not in ("auto", "keep", "replace"):
            raise PluginError(f"captioner wd-tagger: -O underscores={underscores!r}: expected auto, keep or replace")
        if channels not in ("auto", "bgr", "rgb"):
            raise PluginError(f"captioner wd-tagger: -O channels={channels!r}: expected auto, bgr or rgb")
        for name, number in (("max_tags", max_tags), ("size", size)):
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 4096:
                raise PluginError(f"captioner wd-tagger: -O {name}={number!r}: expected a whole number (0: none)")
        self.np, self.context = np, context or CaptionContext()
        self.model_id = MODELS.get(model or "", model or DEFAULT_MODEL)
        model_path, labels_path = self._locate(self.model_id)
        self.labels = read_labels(labels_path)
        providers = ["CPUExecutionProvider"]
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda":
            raise PluginError("captioner wd-tagger: --device cuda needs onnxruntime-gpu (pip install onnxruntime-gpu) "
                              "and a CUDA GPU; the installed onnxruntime has the CPU provider only")
        try:
            self.session = onnxruntime.InferenceSession(str(model_path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise PluginError(f"captioner wd-tagger: {model_path} is not an ONNX model onnxruntime can run "
                              f"({detail})") from None
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self._read_signature(model_path, channels, mean, std, size)
        self.general_threshold, self.character_threshold = float(general_threshold), float(character_threshold)
        self.mcut, self.rating, self.max_tags = bool(mcut), bool(rating), max_tags
        excluded = exclude.split(",") if isinstance(exclude, str) else list(exclude)
        self.exclude = {self._plain(t.strip()) for t in excluded if t.strip()}
        keep = {"keep": True, "replace": False}.get(underscores)
        if keep is None:  # auto: as the set already writes its tags; else spaces (what most trainers expect)
            keep = bool(underscore_convention(self.context.existing))
        self.keep_underscores = keep

    def _locate(self, model_id: str) -> tuple[Path, Path]:
        """The model file and its tag list: in a folder, or downloaded from the hub once."""
        local = Path(model_id).expanduser()
        if local.is_file() and local.suffix == ".onnx":
            local = local.parent
        if local.is_dir():
            model_path = local / "model.onnx"
            labels = next((local / name for name in LABEL_FILES if (local / name).is_file()), None)
            if not model_path.is_file() or labels is None:
                raise PluginError(f"captioner wd-tagger: {local} needs model.onnx and selected_tags.csv (or "
                                  "top_tags.txt); pass --model with the folder that holds them")
            return model_path, labels
        from lora_core.toolkit.hub import how_to_provide, missing_model, require_reachable

        who = "captioner wd-tagger"
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise PluginError(f"{who}: {model_id!r} is not a folder, and downloading it needs huggingface_hub "
                              f"(pip install huggingface_hub); or {how_to_provide(who)}") from None
        require_reachable(model_id, who, probe_file="model.onnx")
        try:
            model_path = Path(hf_hub_download(model_id, "model.onnx"))
            for name in LABEL_FILES:
                try:
                    return model_path, Path(hf_hub_download(model_id, name))
                except Exception:
                    continue
        except Exception as exc:
            raise missing_model(model_id, who, exc) from None
        raise PluginError(f"{who}: {model_id} has model.onnx but no selected_tags.csv or top_tags.txt")

    def _read_signature(self, model_path: Path, channels: str, mean: Any, std: Any, size: int) -> None:
        """Layout, size and normalisation from the model's input; the output that scores every tag."""
        model_input = self.session.get_inputs()[0]
        shape = list(model_input.shape)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise PluginError(f"captioner wd-tagger: {model_path}: input {model_input.name} has shape {shape}, "
                              "not an image batch (N,H,W,3 or N,3,H,W)")
        self.nchw = shape[1] == 3 and shape[3] != 3
        side = shape[2] if self.nchw else shape[1]
        self.size = size or (side if isinstance(side, int) and side > 0 else 448)
        self.input_name = model_input.name
        self.bgr = (channels == "bgr") or (channels == "auto" and not self.nchw)
        if mean is not None or std is not None or self.nchw:
            self.mean = _floats("mean", mean) if mean is not None else (CLIP_MEAN if self.nchw else (0.0, 0.0, 0.0))
            self.std = _floats("std", std) if std is not None else (CLIP_STD if self.nchw else (1.0, 1.0, 1.0))
            self.scale = 1 / 255
        else:  # WD: raw 0-255 pixels
            self.mean, self.std, self.scale = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 1.0
        outputs = self.session.get_outputs()
        matching = [o for o in outputs if o.shape and o.shape[-1] == len(self.labels)]
        if not matching:
            widths = ", ".join(f"{o.name}: {o.shape[-1] if o.shape else '?'}" for o in outputs)
            raise PluginError(f"captioner wd-tagger: {model_path}: no output scores {len(self.labels)} tags "
                              f"(the tag list's length; outputs: {widths})")
        self.output_name = matching[0].name

    # -- images and tags ----------------------------------------------------------------------

    def prepare(self, item: Any) -> Any:
        """One image as the model's input: alpha on white, padded to a white square, resized."""
        from PIL import Image

        np = self.np
        with Image.open(item.path) as opened:
            from PIL import ImageOps

            image = ImageOps.exif_transpose(opened)
            image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            image = canvas
        image = image.convert("RGB")
        side = max(image.size)
        square = Image.new("RGB", (side, side), (255, 255, 255))
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        pixels = np.asarray(square.resize((self.size, self.size), Image.Resampling.BICUBIC), dtype=np.float32)
        pixels = (pixels * self.scale - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.bgr:
            pixels = pixels[:, :, ::-1]
        return np.ascontiguousarray(pixels.transpose(2, 0, 1) if self.nchw else pixels, dtype=np.float32)

    def scores(self, prepared: list[Any]) -> Any:
        np = self.np
        out = self.session.run([self.output_name], {self.input_name: np.stack(prepared)})[0]
        out = np.asarray(out, dtype=np.float64).reshape(len(prepared), -1)
        if out.size and (out.min() < 0 or out.max() > 1):  # logits (JoyTag): probabilities
            out = 1 / (1 + np.exp(-np.clip(out, -60, 60)))
        return out

    def _plain(self, tag: str) -> str:
        return tag.casefold().replace("_", " ")

    def _written(self, tag: str) -> str:
        if self.keep_underscores or tag in KAOMOJI:
            return tag
        return tag.replace("_", " ")

    def tags_for(self, scores: Any) -> list[str]:
        """The tags of one image, in caption order (trigger, characters, general by score)."""
        general_at = character_at = None
        if self.mcut:
            general_at = mcut_threshold([s for (_, c), s in zip(self.labels, scores) if c == GENERAL])
            character_at = max(0.15, mcut_threshold([s for (_, c), s in zip(self.labels, scores) if c == CHARACTER]))
        chosen: list[tuple[int, float, str]] = []
        for (tag, category), score in zip(self.labels, scores):
            if not tag or self._plain(tag) in self.exclude:
                continue
            if category == RATING:
                if self.rating and score >= max(float(s) for (_, c), s in zip(self.labels, scores) if c == RATING):
                    chosen.append((2, float(score), tag))  # the one most likely rating, last
                continue
            limit = (character_at if character_at is not None else self.character_threshold) \
                if category == CHARACTER else (general_at if general_at is not None else self.general_threshold)
            if score >= limit:
                chosen.append((0 if category == CHARACTER else 1, float(score), tag))
        chosen.sort(key=lambda t: (t[0], -t[1]))
        tags = [self._written(tag) for _, _, tag in chosen]
        if self.max_tags:
            tags = tags[:self.max_tags]
        trigger = self.context.trigger
        if trigger:
            tags = [trigger, *(t for t in tags if t.casefold() != trigger.casefold())]
        return tags

    def caption_prepared(self, prepared: list[Any], prompt: str | None = None) -> list[str]:
        return [", ".join(self.tags_for(row)) for row in self.scores(prepared)]

    def caption(self, items: Sequence[Any], prompt: str | None = None) -> list[str]:
        return self.caption_prepared([self.prepare(item) for item in items], prompt)


@hookimpl
def register_captioners(register: Callable[..., None]) -> None:
    register("wd-tagger", WdTagger, default_model=DEFAULT_MODEL,
             description="WD-family ONNX booru taggers (WD v3, EVA02, PixAI, JoyTag) via onnxruntime")

"""LK8xx: does the caption describe its image? CLIP image-text agreement, opt-in.

Text rules cannot see that 200 cyberpunk illustrations were captioned "city at night with
lights"; the image can tell. These rules run only with `lorakit lint --semantic` or
`[semantic] enabled = true` and need torch and transformers (`pip install 'lorakit[clip]'`). One
CLIP model (`--clip-model`, default openai/clip-vit-large-patch14) embeds every image and caption
once per run; image embeddings are cached in `<dataset>/.lorakit_cache/` by path, size, mtime and
model. Judgements are relative to the dataset (robust z-scores and margins), not fixed cosine
thresholds, which differ between CLIP models. The statistics are plain numpy functions, tested on
crafted embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core import RuleOption, Severity
from lora_core.config import Bool, ConfigKey, ConfigSection, Float, Int, Str
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.violations import Violation

SEMANTIC_SECTION = ConfigSection(
    "semantic",
    "CLIP caption/image agreement (LK8xx; opt-in, needs the [clip] extra).",
    [
        ConfigKey("enabled", Bool(), False, "Run the LK8xx rules (also `lorakit lint --semantic`)."),
        ConfigKey("clip-model", Str(), "openai/clip-vit-large-patch14",
                  "CLIP model: a hub id in the local cache or a folder (also `--clip-model`)."),
        ConfigKey("outlier-z", Float(0.5), 3.0,
                  "LK801: robust z-score below -outlier-z marks a caption far less similar to its image than usual."),
        ConfigKey("style-margin", Float(0.0), 0.02,
                  "LK802: how much better the image matches the style prompt than its own caption."),
        ConfigKey("swap-margin", Float(0.0), 0.02,
                  "LK803: how much better a caption matches another image than its own."),
        ConfigKey("batch-size", Int(1), 32, "Images per CLIP batch."),
        ConfigKey("device", Str(["auto", "cuda", "cpu"]), "auto", "Where CLIP runs."),
    ],
)

NEUTRAL_PROMPTS = ("a photo", "an image", "a picture", "a drawing", "a painting", "an illustration")


# -- statistics (pure numpy) -------------------------------------------------------------------

def robust_z(values: Any) -> Any:
    """(x - median) / (1.4826 * MAD): a z-score that a few outliers cannot inflate. Zero spread
    gives zeros (nothing stands out)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    if spread <= 1e-12:
        return np.zeros_like(values)
    return (values - median) / spread


def mismatch_outliers(paired: Any, threshold: float, minimum: int = 8) -> list[tuple[int, float]]:
    """(index, z) of captions whose similarity to their own image is a low outlier. Needs
    `minimum` pairs: below that a distribution says nothing."""
    if len(paired) < minimum:
        return []
    z = robust_z(paired)
    return [(int(i), float(z[i])) for i in range(len(z)) if z[i] < -threshold]


def swaps(text: Any, images: Any, margin: float, block: int = 1024) -> list[tuple[int, int, float, float]]:
    """(caption index, image index, similarity there, similarity to its own image) where a caption
    matches another image better than its own by more than `margin`. Rows are L2-normalised;
    computed in blocks, never the whole matrix at once."""
    import numpy as np

    found = []
    for start in range(0, len(text), block):
        sims = text[start:start + block] @ images.T
        own = sims[np.arange(sims.shape[0]), np.arange(start, start + sims.shape[0])]
        sims[np.arange(sims.shape[0]), np.arange(start, start + sims.shape[0])] = -np.inf
        best = sims.argmax(1)
        for row, (column, other) in enumerate(zip(best, sims[np.arange(sims.shape[0]), best])):
            if other - own[row] > margin:
                found.append((start + row, int(column), float(other), float(own[row])))
    return found


def style_gaps(images: Any, captions: Any, style: Any, neutral: Any) -> tuple[Any, Any]:
    """Per image: (style - best neutral prompt similarity: does the image look like the style?,
    style - own caption similarity: does the style describe it better than its caption?)."""
    import numpy as np

    to_style = images @ style
    return to_style - (images @ neutral.T).max(1), to_style - np.einsum("ij,ij->i", images, captions)


# -- embeddings --------------------------------------------------------------------------------

@dataclass
class Embeddings:
    records: list[Record]  # with a readable image and a caption, in dataset order
    images: Any  # (n, d) L2-normalised
    captions: Any  # (n, d)
    scorer: Any

    def texts(self, texts: Sequence[str]) -> Any:
        return self.scorer.text_embeddings(list(texts)).cpu().numpy()


def enabled(ctx: LintContext) -> bool:
    return bool(ctx.section("semantic").get("enabled", False))


def embeddings(ctx: LintContext) -> Embeddings:
    return ctx.memo("lk8-embeddings", lambda: _embed(ctx))


def _embed(ctx: LintContext) -> Embeddings:
    import numpy as np
    from PIL import Image, ImageOps

    from lora_core.toolkit.clip_scoring import ClipScorer

    settings = ctx.section("semantic")
    model = str(settings.get("clip-model") or "openai/clip-vit-large-patch14")
    scorer = ClipScorer(model, device=str(settings.get("device", "auto")))
    records = []
    for record in ctx.dataset.records:
        if record.image_path and record.image_exists and record.caption:
            records.append(record)
    cache = _EmbeddingCache(Path(ctx.dataset.root), model)
    vectors: list[Any] = [None] * len(records)
    missing = []
    for i, record in enumerate(records):
        vectors[i] = cache.get(str(record.image_path))
        if vectors[i] is None:
            missing.append(i)
    batch = int(settings.get("batch-size", 32))
    for start in range(0, len(missing), batch):
        chunk = missing[start:start + batch]
        pictures = []
        for i in chunk:
            try:
                with Image.open(records[i].image_path) as raw:
                    pictures.append(ImageOps.exif_transpose(raw).convert("RGB"))
            except (OSError, ValueError, SyntaxError):
                pictures.append(None)  # LK601 reports it
        readable = [(i, p) for i, p in zip(chunk, pictures) if p is not None]
        if readable:
            computed = scorer.image_embeddings([p for _, p in readable]).cpu().numpy()
            for (i, _), vector in zip(readable, computed):
                vectors[i] = vector
                cache.put(str(records[i].image_path), vector)
    cache.save()
    keep = [i for i, v in enumerate(vectors) if v is not None]
    records = [records[i] for i in keep]
    images = np.stack([vectors[i] for i in keep]) if keep else np.zeros((0, 1), dtype=np.float32)
    captions = np.concatenate([scorer.text_embeddings([r.caption for r in records[s:s + batch]]).cpu().numpy()
                               for s in range(0, len(records), batch)]) if records else images.copy()
    return Embeddings(records, images, captions, scorer)


class _EmbeddingCache:
    """Image embeddings per file, keyed by path, size, mtime and model, in one .npz per model."""

    def __init__(self, root: Path, model: str) -> None:
        tag = hashlib.sha256(model.encode()).hexdigest()[:12]
        self.path = root / ".lorakit_cache" / f"clip-{tag}.npz"
        self.entries: dict[str, tuple[list[int], Any]] = {}
        self.changed = False
        try:
            import numpy as np

            with np.load(self.path, allow_pickle=False) as data:
                keys = json.loads(str(data["keys"]))
                for (path, stamp), vector in zip(keys, data["vectors"]):
                    self.entries[path] = (stamp, vector)
        except (OSError, ValueError, KeyError):
            pass

    @staticmethod
    def _stamp(path: str) -> list[int] | None:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return [stat.st_size, stat.st_mtime_ns]

    def get(self, path: str) -> Any:
        entry = self.entries.get(path)
        return entry[1] if entry and entry[0] == self._stamp(path) else None

    def put(self, path: str, vector: Any) -> None:
        self.entries[path] = (self._stamp(path) or [0, 0], vector)
        self.changed = True

    def save(self) -> None:
        if not self.changed or not self.entries:
            return
        import io

        import numpy as np

        from lora_core.atomic import atomic_write_bytes

        keys = [(path, stamp) for path, (stamp, _) in self.entries.items()]
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(json.dumps(keys)), vectors=np.stack([v for _, v in self.entries.values()]))
        try:
            from lora_core.toolkit.image_facts import make_cache_folder

            make_cache_folder(self.path.parent)
            atomic_write_bytes(self.path, buffer.getvalue())
        except OSError:
            pass  # read-only dataset: no cache


# -- rules -------------------------------------------------------------------------------------

class SemanticRule(Rule):
    shares = "clip"
    relint_on_edit = False  # a CLIP model per keystroke is too slow: re-run on save
    # The cost hint balances the caption rules between worker processes. Off (the default) these
    # rules cost nothing; on, the CLIP model dominates whatever the split.
    cost = 1


class CaptionImageMismatch(SemanticRule):
    """## What it does
    Reports captions whose CLIP similarity to their own image is a low outlier within the dataset
    (robust z-score below `-[semantic] outlier-z`). Opt-in: `lorakit lint --semantic`.

    ## Why it matters
    A caption that describes another picture, or almost nothing of this one, teaches the LoRA to
    bind the words to the wrong pixels. Comparing within the dataset finds the captions that fit
    much worse than the others, whatever CLIP model and style.

    ## Example
    In a set of neon street scenes, one caption reads "a bowl of fruit on a table".

    ## Fix
    Rewrite the caption from the image (or check that the file name points at the right image).
    """

    code = "LK801"
    name = "caption-image-mismatch"
    summary = "The caption's CLIP similarity to its image is a low outlier within the dataset"
    severity = Severity.WARNING
    options = (RuleOption("semantic.outlier-z", "robust z-score limit"),
               RuleOption("semantic.clip-model", "the CLIP model"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        if not enabled(ctx):
            return
        import numpy as np

        found = embeddings(ctx)
        paired = np.einsum("ij,ij->i", found.images, found.captions)
        threshold = float(ctx.section("semantic").get("outlier-z", 3.0))
        for index, z in mismatch_outliers(paired, threshold):
            record = found.records[index]
            similarity = float(paired[index])
            yield self.at_caption(record, f"caption fits its image far worse than the rest of the dataset (CLIP "
                                  f"similarity {similarity:.3f}, robust z {z:.1f})", score=round(similarity, 4),
                                  z=round(z, 2))


class StyleMissingFromCaption(SemanticRule):
    """## What it does
    For each `[style] required` term, reports images that CLIP sees as that style (the style
    prompt beats a set of neutral prompts by `[semantic] style-margin`) and that the style
    describes better than their own caption does, while the caption lacks the term. Opt-in.

    ## Why it matters
    The mission's worst case: 200 cyberpunk illustrations captioned "city at night with lights".
    The LoRA then learns cyberpunk as the meaning of "city at night", and the style word never.

    ## Example
    A neon-drenched street captioned "city at night with lights", with `required = ["cyberpunk"]`.

    ## Fix
    Add the style term (the LK201 fix does it when the style prefix is configured).
    """

    code = "LK802"
    name = "style-missing-from-caption"
    summary = "The image matches a required style far better than its caption reflects"
    severity = Severity.WARNING
    options = (RuleOption("style.required", "the style terms"), RuleOption("semantic.style-margin", "margin"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        if not enabled(ctx):
            return
        terms = [t for t in ctx.section("style").get("required", []) if t]
        if not terms:
            return
        found = embeddings(ctx)
        if not found.records:
            return
        margin = float(ctx.section("semantic").get("style-margin", 0.02))
        neutral = found.texts(NEUTRAL_PROMPTS)
        for term in terms:
            style = found.texts([f"a {term} image"])[0]
            looks, beats = style_gaps(found.images, found.captions, style, neutral)
            for index, record in enumerate(found.records):
                if term.casefold() in (record.caption or "").casefold():
                    continue
                if looks[index] > margin and beats[index] > margin:
                    yield self.at_caption(record, f"the image looks {term} to CLIP (style prompt beats neutral "
                                          f"prompts by {looks[index]:.3f} and this caption by {beats[index]:.3f}) but "
                                          f"the caption never says {term!r}", score=round(float(looks[index]), 4),
                                          style=term)


class CaptionSwap(SemanticRule):
    """## What it does
    Reports captions that match another image of the dataset better than their own, by more than
    `[semantic] swap-margin` in CLIP similarity. Opt-in.

    ## Why it matters
    Usually two rows were swapped, or captions were pasted in the wrong order: both images then
    train on a description of the other.

    ## Example
    `a.png` has the caption of `b.png`, and `b.png` the caption of `a.png`.

    ## Fix
    Check the file names of both rows and swap the captions back.
    """

    code = "LK803"
    name = "caption-swap"
    summary = "The caption matches another image in the set clearly better than its own"
    severity = Severity.WARNING
    options = (RuleOption("semantic.swap-margin", "margin"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        if not enabled(ctx):
            return
        found = embeddings(ctx)
        margin = float(ctx.section("semantic").get("swap-margin", 0.02))
        for index, other, there, own in swaps(found.captions, found.images, margin):
            record, target = found.records[index], found.records[other]
            yield self.at_caption(record, f"caption matches {target.image} better than its own image (CLIP "
                                  f"{there:.3f} vs {own:.3f})", score=round(own, 4), better_match=target.image)


RULES = (CaptionImageMismatch, StyleMissingFromCaption, CaptionSwap)
plugin = RulePack(RULES, config=[SEMANTIC_SECTION])

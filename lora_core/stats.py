"""`lorakit stats`: what a dataset's captions and images look like, in numbers.

Tags (comma-separated parts) and words by frequency, caption length in CLIP tokens (exact when a
CLIP tokenizer is available, else words), trigger coverage and identity counts from `[entities]`,
image sizes and aspect ratios (file headers only, cached like the image rules). `compute` returns
plain data (the `--format json` output, a stable contract documented in docs/cli.md).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.config import Config
from lora_core.datasets.model import Dataset

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
STOP_WORDS = frozenset(["a", "an", "the", "of", "on", "in", "with", "and", "or", "at", "by", "to", "for", "from",
                        "is", "are"])
TOKEN_BINS = (0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 100, 150)
ASPECT_BINS = (0.0, 0.5, 0.67, 0.8, 0.95, 1.05, 1.25, 1.5, 2.0, 3.0)


@dataclass
class Histogram:
    edges: list[float]
    counts: list[int]

    @classmethod
    def of(cls, values: list[float], edges: tuple[float, ...]) -> Histogram:
        counts = [0] * len(edges)
        for value in values:
            index = max(i for i, edge in enumerate(edges) if value >= edge) if value >= edges[0] else 0
            counts[index] += 1
        return cls(list(edges), counts)

    def labels(self) -> list[str]:
        def fmt(v: float) -> str:
            return f"{v:g}"

        ends = [fmt(e) for e in self.edges[1:]] + ["+"]
        return [f"{fmt(a)}-{b}" if b != "+" else f"{fmt(a)}+" for a, b in zip(self.edges, ends)]

    def as_dict(self) -> dict[str, Any]:
        return {"edges": self.edges, "counts": self.counts, "labels": self.labels()}


def _token_counter(config: Config, root: Path) -> tuple[Any, str]:
    from lora_core.toolkit.clip_tokens import TokenizerUnavailable, load_tokenizer

    tokens = config.section("tokens")
    try:
        tokenizer = load_tokenizer(str(tokens.get("tokenizer", "clip") or "clip"),
                                   str(config.section("train").get("base-model", "") or ""),
                                   config.path.parent if config.path else root)
        return tokenizer.count, "clip-tokens"
    except TokenizerUnavailable:
        return (lambda text: len(text.split())), "words"


def compute(dataset: Dataset, config: Config, top: int = 30, images: bool = True) -> dict[str, Any]:
    captions = [r.caption for r in dataset.captioned if r.caption]  # over MAX_CAPTION_CHARS: not counted (LK011)
    tags: Counter[str] = Counter()
    words: Counter[str] = Counter()
    for caption in captions:
        tags.update(_tags(caption))
        words.update(w for w in (m.group(0).casefold() for m in _WORD.finditer(caption)) if w not in STOP_WORDS)
    count, unit = _token_counter(config, Path(dataset.root))
    lengths = [count(c) for c in captions]
    entities = config.section("entities")
    trigger = str(entities.get("trigger", "") or "")
    identities = list(entities.get("identities", []) or [])
    result: dict[str, Any] = {
        "dataset": str(dataset.path),
        "records": len(dataset.records),
        "captions": len(captions),
        "empty_captions": len(dataset.records) - len(captions),
        "tags": [{"tag": t, "count": n} for t, n in tags.most_common(top)],
        "distinct_tags": len(tags),
        "words": [{"word": w, "count": n} for w, n in words.most_common(top)],
        "length": {
            "unit": unit,
            "mean": round(sum(lengths) / len(lengths), 2) if lengths else 0,
            "max": max(lengths, default=0),
            "over_75": sum(1 for n in lengths if n > 75) if unit == "clip-tokens" else None,
            "histogram": Histogram.of([float(n) for n in lengths], TOKEN_BINS).as_dict(),
        },
        "trigger": None if not trigger else {
            "token": trigger, "captions": sum(1 for c in captions if trigger in c),
            "coverage": round(sum(1 for c in captions if trigger in c) / len(captions), 4) if captions else 0.0},
        "identities": {name: sum(1 for c in captions if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", c))
                       for name in identities},
    }
    result["concepts"] = _concepts(dataset, top)
    if images:
        result["images"] = _image_stats(dataset, config)
    return result


def _tags(caption: str) -> list[str]:
    """A caption's comma-separated tags, trimmed (a repeated tag counts twice). Letter case is
    kept: `Cybrpnk` and `cybrpnk` are two tokens to the text encoder, and two tags to lint."""
    return [t.strip() for t in caption.split(",") if t.strip()]


def _concepts(dataset: Dataset, top: int) -> dict[str, Any] | None:
    """What one epoch shows the model in a kohya set: each `N_name` folder's images times its
    repeats, and the tags weighted the same way (a tag in a 10x folder is seen ten times). None
    for a dataset without repeat folders."""
    folders: dict[str, dict[str, Any]] = {}
    weighted: Counter[str] = Counter()
    for record in dataset.records:
        if record.repeats is None:
            continue
        name = f"{record.repeats}_{record.concept}"
        entry = folders.setdefault(name, {"folder": name, "repeats": record.repeats, "images": 0, "samples": 0})
        entry["images"] += 1
        entry["samples"] += record.repeats
        for tag in _tags(record.caption or ""):  # counted as in `tags`, each time times the repeats
            weighted[tag] += record.repeats
    if not folders:
        return None
    total = sum(f["samples"] for f in folders.values())
    listed = sorted(folders.values(), key=lambda f: (-f["samples"], f["folder"]))
    for entry in listed:
        entry["share"] = round(entry["samples"] / total, 4) if total else 0.0
    return {"samples_per_epoch": total, "folders": listed,
            "tags_per_epoch": [{"tag": t, "count": n} for t, n in weighted.most_common(top)]}


def _image_stats(dataset: Dataset, config: Config) -> dict[str, Any]:
    from lora_core.toolkit.image_facts import analyse, collect

    facts = dict(collect(dataset, pixels=False, settings=config.section("images")))
    # Images with no caption train too (kohya: on an empty caption or the folder's class): counted.
    uncaptioned = sorted(dataset.images_on_disk - set(facts) - {r.image for r in dataset.records})
    max_pixels = int(config.section("images").get("max-pixels", 89478485) or 89478485)
    for name in uncaptioned:
        facts[name] = analyse(os.path.join(str(dataset.root), name), pixels=False, max_pixels=max_pixels)
    readable = [f for f in facts.values() if not f.get("error") and "width" in f]
    sizes = Counter(f"{f['width']}x{f['height']}" for f in readable)
    shorter = [min(f["width"], f["height"]) for f in readable]
    aspects = [f["width"] / max(1, f["height"]) for f in readable]
    return {
        "count": len(facts),
        "uncaptioned": len(uncaptioned),
        "unreadable": len(facts) - len(readable),
        "sizes": [{"size": s, "count": n} for s, n in sizes.most_common(10)],
        "shorter_side": {"min": min(shorter, default=0), "median": sorted(shorter)[len(shorter) // 2] if shorter
                         else 0, "max": max(shorter, default=0)},
        "modes": dict(Counter(f.get("mode", "?") for f in readable)),
        "aspect_histogram": Histogram.of(aspects, ASPECT_BINS).as_dict(),
    }


def plot(stats: dict[str, Any], folder: Path) -> list[Path]:
    """PNG bar charts of the tags, the caption lengths and the aspect ratios; for a kohya set, the
    tags as one epoch shows them (weighted by repeats) and each folder's samples per epoch."""
    from lora_core.charts import bar_chart

    folder.mkdir(parents=True, exist_ok=True)
    concepts = stats.get("concepts")
    tags, title = stats["tags"][:20], "Most frequent tags"
    if concepts:
        tags, title = concepts["tags_per_epoch"][:20], "Most frequent tags per epoch (kohya repeats counted)"
    written = [bar_chart([t["tag"] for t in tags], [t["count"] for t in tags], title, folder / "tags.png",
                         horizontal=True)]
    if concepts:
        folders = concepts["folders"]
        written.append(bar_chart([f["folder"] for f in folders], [f["samples"] for f in folders],
                                 "Samples per epoch by folder (images x repeats)", folder / "concepts.png",
                                 horizontal=True))
    histogram = stats["length"]["histogram"]
    written.append(bar_chart(histogram["labels"], histogram["counts"], f"Caption length ({stats['length']['unit']})",
                             folder / "caption-length.png"))
    if "images" in stats:
        aspects = stats["images"]["aspect_histogram"]
        written.append(bar_chart(aspects["labels"], aspects["counts"], "Aspect ratio (width / height)",
                                 folder / "aspect-ratio.png"))
    return written

"""`lorakit caption`: caption a folder of images with one or more captioner plugins.

The flow: list the images; skip those already captioned (`resume`); caption them in batches with
each captioner; if there are several, vote per image; post-process each caption with the lint
config's own fixes (style prefix, vague terms, trigger in front, separators), so auto-captions
start out conforming; write the output in chunks, each chunk atomically, so an interrupt loses at
most the chunk in flight; lint the result.

A captioner plugin registers `factory(model=None, device="auto", dtype="auto")` returning an object
with `caption(items: list[ImageItem], prompt: str | None = None) -> list[str]`. Model captioners
call `item.load()` for a PIL image; the manual one reads `item.name`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.config import Config
from lora_core.datasets.model import Dataset, Record, SourceFile
from lora_core.datasets.reader import image_inventory
from lora_core.engine import Selection, run_rules
from lora_core.errors import DatasetError, PluginError
from lora_core.fixer import fix_dataset
from lora_core.plugins import Registry

#: The fixes that turn a raw caption into one that follows the config (some are "unsafe" in lint,
#: where they would rewrite a human's caption; here they shape a machine's draft).
POSTPROCESS_RULES = ("LK101", "LK102", "LK104", "LK105", "LK106", "LK201", "LK202", "LK203", "LK305", "LK306")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ImageItem:
    """One image to caption: its name relative to the captioned folder, its path, that folder."""

    name: str
    path: Path
    root: Path

    def load(self) -> Any:
        """The image as an RGB PIL image (Pillow is needed only by model captioners)."""
        from PIL import Image, ImageOps

        with Image.open(self.path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")


@dataclass
class CaptionOptions:
    captioners: list[str]
    output: str = "metadata.csv"  # "metadata.csv", "metadata.jsonl" is not written; "sidecars"
    models: dict[str, str] = field(default_factory=dict)  # captioner -> model id or path
    batch_size: int = 8
    resume: bool = False
    overwrite: bool = False
    vote: str = "consensus"
    keep_candidates: bool = False
    device: str = "auto"
    dtype: str = "auto"
    prompt: str | None = None
    caption_extension: str = ".txt"


@dataclass
class CaptionResult:
    written: int
    skipped: int
    output: Path
    chosen: dict[str, str] = field(default_factory=dict)  # image -> captioner that won the vote


def consensus(candidates: Sequence[str]) -> tuple[int, list[float]]:
    """Index of the candidate sharing the most words with the others, and every candidate's score
    (the number of its distinct words found in each other candidate, summed). Ties keep the
    earlier captioner."""
    words = [set(_WORD.findall(c.casefold())) for c in candidates]
    scores = [float(sum(len(mine & other) for j, other in enumerate(words) if j != i))
              for i, mine in enumerate(words)]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return best, scores


def postprocess(captions: list[str], config: Config, registry: Registry) -> list[str]:
    """Apply the config's fixes to fresh captions (in memory, no file involved)."""
    rules = [registry.rules[c] for c in POSTPROCESS_RULES if c in registry.rules]
    if not rules or not captions:
        return captions
    source = SourceFile(path=Path("<captions>"), text="")
    records = [Record(i, f"#{i}", c, source, original_caption=c) for i, c in enumerate(captions)]
    dataset = Dataset(root=Path("."), path=Path("<captions>"), format="memory", records=records, sources=[source])
    selection = Selection(select=list(POSTPROCESS_RULES))

    def run() -> list:
        return run_rules(dataset, rules, selection, config, jobs=1)[0]

    fix_dataset(dataset, run, unsafe=True)
    return [r.caption or "" for r in records]


class CaptionWriter:
    """Keeps the captions written so far and rewrites the output atomically at each flush."""

    def __init__(self, folder: Path, output: str, overwrite: bool, resume: bool, extension: str,
                 keep_candidates: bool) -> None:
        self.folder, self.extension, self.keep_candidates = folder, extension, keep_candidates
        self.sidecars = output == "sidecars"
        self.path = folder if self.sidecars else folder / output
        self.rows: dict[str, dict[str, str]] = {}
        self.pending_sidecars: dict[str, str] = {}
        if not self.sidecars:
            if self.path.suffix != ".csv":
                raise DatasetError(f"{self.path}: --output is `metadata.csv` (or another .csv name) or `sidecars`")
            if self.path.exists():
                if not (resume or overwrite):
                    raise DatasetError(f"{self.path} exists: pass --resume to keep its captions and add the "
                                       "missing ones, or --overwrite to replace it")
                if resume:
                    self._load_existing()

    def _load_existing(self) -> None:
        text = self.path.read_text(encoding="utf-8-sig")
        for row in csv.DictReader(io.StringIO(text, newline="")):
            if row.get("file_name"):
                self.rows[row["file_name"]] = {k: v for k, v in row.items() if k is not None}

    def has_caption(self, image: str) -> bool:
        if self.sidecars:
            sidecar = (self.folder / image).with_suffix(self.extension)
            return sidecar.is_file() and bool(sidecar.read_text(encoding="utf-8", errors="replace").strip())
        return bool(self.rows.get(image, {}).get("text", "").strip())

    def add(self, image: str, caption: str, candidates: dict[str, Any] | None = None) -> None:
        if self.sidecars:
            self.pending_sidecars[image] = caption
            return
        row = self.rows.setdefault(image, {"file_name": image})
        row["text"] = caption
        if self.keep_candidates and candidates is not None:
            row["candidates"] = json.dumps(candidates, ensure_ascii=False, sort_keys=True)

    def flush(self, order: list[str]) -> None:
        if self.sidecars:
            for image, caption in self.pending_sidecars.items():
                atomic_write_bytes((self.folder / image).with_suffix(self.extension), (caption + "\n").encode())
            self.pending_sidecars.clear()
            return
        columns = ["file_name", "text"]
        for row in self.rows.values():
            columns += [k for k in row if k not in columns]
        position = {name: i for i, name in enumerate(order)}
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
        writer.writeheader()
        for image in sorted(self.rows, key=lambda n: (position.get(n, len(position)), n)):
            writer.writerow(self.rows[image])
        atomic_write_bytes(self.path, buffer.getvalue().encode("utf-8"))


def list_images(folder: Path) -> list[ImageItem]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of images")
    names, _ = image_inventory(folder)
    if not names:
        raise DatasetError(f"{folder}: no images found (.png, .jpg, .jpeg, .webp, ...)")
    return [ImageItem(name, folder / name, folder) for name in sorted(names)]


def load_captioners(names: Iterable[str], options: CaptionOptions, registry: Registry) -> list[tuple[str, Any]]:
    loaded = []
    for name in names:
        entry = registry.captioners.get(name)
        if entry is None:
            available = ", ".join(sorted(registry.captioners)) or "none installed"
            raise PluginError(f"no captioner {name!r} (available: {available}; see `lorakit plugins`)")
        model = options.models.get(name) or options.models.get("*")
        loaded.append((name, entry.factory(model=model, device=options.device, dtype=options.dtype)))
    return loaded


def caption_folder(
    folder: Path, options: CaptionOptions, config: Config, registry: Registry,
    progress: Callable[[int, int], None] | None = None,
) -> CaptionResult:
    """Caption every image of `folder` not yet captioned (with resume) and write the output."""
    if options.vote not in ("consensus", "clip"):
        raise PluginError(f"unknown vote {options.vote!r} (consensus or clip)")
    if options.vote == "clip" and len(options.captioners) > 1:
        raise PluginError("--vote clip needs the CLIP scorer of the [clip] extra, which is not available yet; "
                          "use --vote consensus")
    unknown = [name for name in options.captioners if name not in registry.captioners]
    if unknown:
        available = ", ".join(sorted(registry.captioners)) or "none installed"
        raise PluginError(f"no captioner {unknown[0]!r} (available: {available}; see `lorakit plugins`)")
    items = list_images(folder)
    writer = CaptionWriter(folder, options.output, options.overwrite, options.resume, options.caption_extension,
                           options.keep_candidates)
    if writer.sidecars and not (options.resume or options.overwrite):
        existing = next((item.name for item in items if writer.has_caption(item.name)), None)
        if existing is not None:
            raise DatasetError(f"{folder}: `{existing}` already has a caption sidecar: pass --resume to keep existing "
                               "captions and add the missing ones, or --overwrite to replace them")
    todo = [item for item in items if not (options.resume and writer.has_caption(item.name))]
    captioners = load_captioners(options.captioners, options, registry)
    order = [item.name for item in items]
    result = CaptionResult(written=0, skipped=len(items) - len(todo), output=writer.path)
    # Each flush rewrites the CSV: at most ~50 of them, and never fewer than 64 images apart.
    chunk = max(64, options.batch_size, len(todo) // 50)
    done = 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        drafts: list[list[str]] = []
        for _, captioner in captioners:
            texts: list[str] = []
            for b in range(0, len(part), options.batch_size):
                batch = part[b:b + options.batch_size]
                out = list(captioner.caption(batch, prompt=options.prompt))
                if len(out) != len(batch):
                    raise PluginError(f"captioner returned {len(out)} captions for {len(batch)} images")
                texts.extend(out)
            drafts.append(texts)
        chosen = []
        for index, item in enumerate(part):
            candidates = [d[index] for d in drafts]
            best, scores = consensus(candidates) if len(candidates) > 1 else (0, [1.0])
            chosen.append((item, candidates[best], best, candidates, scores))
        finals = postprocess([c for _, c, *_ in chosen], config, registry)
        for (item, _, best, candidates, scores), final in zip(chosen, finals):
            names = [n for n, _ in captioners]
            detail = {"chosen": names[best], "vote": options.vote,
                      "candidates": dict(zip(names, candidates)),
                      "scores": {n: round(s, 4) for n, s in zip(names, scores)}}
            writer.add(item.name, final, detail)
            result.chosen[item.name] = names[best]
        writer.flush(order)
        result.written += len(part)
        done += len(part)
        if progress is not None:
            progress(done, len(todo))
    if not todo and not writer.sidecars and not writer.path.exists():
        writer.flush(order)
    return result

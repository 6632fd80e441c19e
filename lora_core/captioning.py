"""`lorakit caption`: caption a folder of images with one or more captioner plugins.

The flow: list the images; skip those already captioned (`resume`); caption them in batches with
each captioner; if there are several, vote per image; post-process each caption with the lint
config's own fixes (style prefix, vague terms, trigger in front, separators), so auto-captions
start out conforming; write the output in chunks, each chunk atomically, so an interrupt loses at
most the chunk in flight; lint the result.

A captioner plugin registers `factory(model=None, device="auto", dtype="auto")` returning an object
with `caption(items: list[ImageItem], prompt: str | None = None) -> list[str]`. Model captioners
call `item.load()` for a PIL image; the manual one reads `item.name`. A captioner may also split
the work in two: `prepare(item)` (decode and preprocess one image: CPU work, run in DataLoader
workers with pinned memory) and `caption_prepared(prepared, prompt=None)` (the model); the
prepared batch is then reused for every prompt (template slot questions).

Under `accelerate launch` (WORLD_SIZE > 1) each process captions every n-th image into its own
shard file, and the first process merges the shards in the original order.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.config import Config
from lora_core.datasets.model import Dataset, Record, SourceFile
from lora_core.datasets.reader import image_inventory
from lora_core.engine import Selection, run_rules
from lora_core.errors import ConfigError, DatasetError, PluginError
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
    clip_model: str | None = None  # --vote clip scorer; None: the default CLIP model
    template: bool = False  # fill [template] pattern slots by asking question-answering captioners
    workers: int | None = None  # DataLoader workers for image preprocessing; None: auto
    captioner_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # name or "*" -> kwargs


@dataclass
class CaptionResult:
    written: int
    skipped: int
    output: Path
    chosen: dict[str, str] = field(default_factory=dict)  # image -> captioner that won the vote
    main_process: bool = True  # False in the other processes of a distributed run (they don't lint)


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


SHARDS_FOLDER = ".lorakit-caption-shards"


class CaptionWriter:
    """Keeps the captions written so far and rewrites the output atomically at each flush."""

    def __init__(self, folder: Path, output: str, overwrite: bool, resume: bool, extension: str,
                 keep_candidates: bool, shard: str | None = None) -> None:
        self.folder, self.extension, self.keep_candidates = folder, extension, keep_candidates
        self.sidecars = output == "sidecars"
        self.path = folder if self.sidecars else folder / output
        self.rows: dict[str, dict[str, str]] = {}
        self.pending_sidecars: dict[str, str] = {}
        if self.sidecars:
            return
        if self.path.suffix != ".csv":
            raise DatasetError(f"{self.path}: --output is `metadata.csv` (or another .csv name) or `sidecars`")
        shards = sorted(self.shards_folder.glob(f"{self.path.name}.*.csv")) if self.shards_folder.is_dir() else []
        if shard is not None:  # one process of a distributed run: its own file, kept across restarts
            self.path = self.shards_folder / f"{self.path.name}.{shard}.csv"
            if self.path.exists() and not overwrite:
                self._load(self.path)
            return
        if self.path.exists() or shards:
            if not (resume or overwrite):
                found = self.path if self.path.exists() else shards[0]
                raise DatasetError(f"{found} exists: pass --resume to keep its captions and add the "
                                   "missing ones, or --overwrite to replace it")
            if resume:
                for path in [self.path, *shards]:  # shards: left by an interrupted distributed run
                    if path.exists():
                        self._load(path)

    @property
    def shards_folder(self) -> Path:
        return self.folder / SHARDS_FOLDER

    def _load(self, path: Path) -> None:
        text = path.read_text(encoding="utf-8-sig")
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

    def merge_shards(self) -> None:
        """Take in every shard's rows (distributed run finished), then drop the shard files."""
        if self.sidecars or not self.shards_folder.is_dir():
            return
        for path in sorted(self.shards_folder.glob(f"{self.path.name}.*.csv")):
            self._load(path)

    def remove_shards(self) -> None:
        if not self.sidecars and self.shards_folder.is_dir():
            for path in self.shards_folder.glob(f"{self.path.name}.*.csv"):
                path.unlink()
            if not any(self.shards_folder.iterdir()):
                shutil.rmtree(self.shards_folder, ignore_errors=True)

    def flush(self, order: list[str]) -> None:
        if self.sidecars:
            for image, caption in self.pending_sidecars.items():
                # surrogateescape: bytes that were not UTF-8 in a source caption are written back as
                # they were (LK004 then reports them, with the cp1252 reading as a fix), never lost
                atomic_write_bytes((self.folder / image).with_suffix(self.extension),
                                   (caption + "\n").encode("utf-8", "surrogateescape"))
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, buffer.getvalue().encode("utf-8", "surrogateescape"))


def list_images(folder: Path) -> list[ImageItem]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of images")
    names, _ = image_inventory(folder)
    if not names:
        raise DatasetError(f"{folder}: no images found (.png, .jpg, .jpeg, .webp, ...)")
    return [ImageItem(name, folder / name, folder) for name in sorted(names)]


def parse_captioner_options(values: Iterable[str]) -> dict[str, dict[str, Any]]:
    """`-O [NAME.]KEY=VALUE` values into {captioner or "*": {key: value}}; values are read as
    TOML scalars when they parse (5, 0.9, true), else kept as text (top-p)."""
    from lora_core.config import tomllib

    parsed: dict[str, dict[str, Any]] = {}
    for value in values:
        key, equals, raw = value.partition("=")
        if not equals or not key.strip():
            raise PluginError(f"-O {value!r}: expected [NAME.]KEY=VALUE (e.g. coca.decoding=top-p)")
        name, _, key = key.strip().rpartition(".")
        try:
            item: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            item = raw
        parsed.setdefault(name or "*", {})[key.replace("-", "_")] = item
    return parsed


def _option_names(factory: Callable[..., Any]) -> tuple[bool, list[str]]:
    """(takes any keyword, the keyword options it names besides model/device/dtype)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False, []
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    return accepts_any, [k for k in parameters if k not in ("self", "model", "device", "dtype")]


def _factory_options(name: str, factory: Callable[..., Any], options: CaptionOptions) -> dict[str, Any]:
    """The -O options meant for this captioner: its own, plus the unprefixed ones it accepts."""
    accepts_any, takes = _option_names(factory)
    chosen = {k: v for k, v in options.captioner_options.get("*", {}).items() if accepts_any or k in takes}
    for key, value in options.captioner_options.get(name, {}).items():
        if not accepts_any and key not in takes:
            raise PluginError(f"captioner {name} has no option {key!r} (options: {', '.join(takes) or 'none'})")
        chosen[key] = value
    return chosen


def require_captioners(names: Iterable[str], registry: Registry) -> None:
    for name in names:
        if name not in registry.captioners:
            available = ", ".join(sorted(registry.captioners)) or "none installed"
            raise PluginError(f"no captioner {name!r} (available: {available}; see `lorakit plugins`)")


def load_captioners(names: Iterable[str], options: CaptionOptions, registry: Registry) -> list[tuple[str, Any]]:
    names = list(names)
    require_captioners(names, registry)
    for target in options.captioner_options:
        if target != "*" and target not in names:
            raise PluginError(f"-O {target}.…: {target!r} is not one of the captioners in use ({', '.join(names)})")
    for key in options.captioner_options.get("*", {}):
        takers = [_option_names(registry.captioners[n].factory) for n in names]
        if not any(accepts_any or key in takes for accepts_any, takes in takers):
            raise PluginError(f"-O {key}: none of the captioners ({', '.join(names)}) takes this option")
    loaded = []
    for name in names:
        entry = registry.captioners[name]
        model = options.models.get(name) or options.models.get("*")
        extra = _factory_options(name, entry.factory, options)
        loaded.append((name, entry.factory(model=model, device=options.device, dtype=options.dtype, **extra)))
    return loaded


@dataclass
class Shard:
    """This process's part of a distributed run (`accelerate launch`): every `world`-th image from `rank`."""

    rank: int = 0
    world: int = 1
    state: Any = None

    @classmethod
    def from_environment(cls) -> Shard:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
            return cls()
        try:
            import torch
            from accelerate import PartialState
        except ImportError:
            raise PluginError("WORLD_SIZE > 1 (a distributed launch) needs accelerate: pip install accelerate") \
                from None
        state = PartialState(cpu=not torch.cuda.is_available())  # cpu: a gloo group of CPU processes
        return cls(state.process_index, state.num_processes, state)

    @property
    def name(self) -> str | None:
        return f"rank{self.rank:03d}-of-{self.world:03d}" if self.world > 1 else None

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def prepared_batches(captioner: Any, items: list[ImageItem], batch_size: int,
                     workers: int | None) -> Iterable[tuple[list[ImageItem], list[Any] | None]]:
    """Batches of items, with each image already prepared when the captioner splits its work:
    in DataLoader worker processes (pinned memory for a CUDA model) when `workers` > 0."""
    batches = [items[b:b + batch_size] for b in range(0, len(items), batch_size)]
    prepare = getattr(captioner, "prepare", None)
    if prepare is None or not callable(getattr(captioner, "caption_prepared", None)):
        yield from ((batch, None) for batch in batches)
        return
    on_cuda = str(getattr(captioner, "device", "cpu")).startswith("cuda")
    if workers is None:  # auto: the GPU waits on JPEG decoding otherwise; on a CPU the cores run the model
        workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if on_cuda else 0
    if workers == 0 or len(items) <= batch_size:
        yield from ((batch, [prepare(item) for item in batch]) for batch in batches)
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(_Prepared(items, prepare), batch_size=batch_size, num_workers=workers, collate_fn=list,
                        pin_memory=on_cuda)
    yield from zip(batches, loader)


class _Prepared:
    """A map-style dataset over the items (a plain class: torch's Dataset adds nothing needed here)."""

    def __init__(self, items: list[ImageItem], prepare: Callable[[ImageItem], Any]) -> None:
        self.items, self.prepare = items, prepare

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.prepare(self.items[index])


def run_captioner(captioner: Any, items: list[ImageItem], prompts: Sequence[str | None], batch_size: int,
                  workers: int | None) -> list[list[str]]:
    """For each prompt, one caption per item (images are prepared once for all prompts)."""
    out: list[list[str]] = [[] for _ in prompts]
    for batch, prepared in prepared_batches(captioner, items, batch_size, workers):
        for texts, prompt in zip(out, prompts):
            result = (captioner.caption_prepared(prepared, prompt=prompt) if prepared is not None
                      else captioner.caption(batch, prompt=prompt))
            result = list(result)
            if len(result) != len(batch):
                raise PluginError(f"captioner returned {len(result)} captions for {len(batch)} images")
            texts.extend(str(c) for c in result)
    return out


class TemplateFiller:
    """Fills `[template] pattern` slots by asking a question-answering captioner one question per
    slot; a slot with a vocabulary in `[template] slots` gets a multiple-choice question and the
    answer is mapped onto the vocabulary."""

    def __init__(self, config: Config) -> None:
        from lorakit_rules.template import Template

        section = config.section("template")
        pattern = section.get("pattern", "")
        if not pattern:
            raise ConfigError("--template needs `[template] pattern` in lorakit.toml")
        self.template = Template.parse(pattern)
        self.vocabulary: dict[str, list[str]] = dict(section.get("slots", {}))
        custom: dict[str, str] = dict(section.get("questions", {}))
        self.slots = [piece.text for piece in self.template.pieces if piece.is_slot]
        self.questions = [custom.get(slot) or self.default_question(slot) for slot in self.slots]

    def default_question(self, slot: str) -> str:
        words = slot.replace("_", " ").replace("-", " ")
        choices = self.vocabulary.get(slot)
        if choices:
            listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            return f"Question: which {words} does this picture show: {listed}? Answer:"
        return f"Question: what is the {words} in this picture? Answer:"

    def choose(self, slot: str, answer: str) -> str:
        answer = answer.strip().strip(".,;:!?").strip()
        choices = self.vocabulary.get(slot)
        if not choices:
            return answer
        folded = answer.casefold()
        for choice in choices:
            if choice.casefold() in folded:
                return choice
        words = set(_WORD.findall(folded))
        overlap = [(len(words & set(_WORD.findall(c.casefold()))), -i) for i, c in enumerate(choices)]
        best, negative_index = max(overlap)
        return choices[-negative_index] if best else answer  # no overlap: keep the answer, lint LK402 flags it

    def fill(self, answers: Sequence[str]) -> str:
        values = dict(zip(self.slots, answers))
        return "".join(self.choose(p.text, values[p.text]) if p.is_slot else p.text for p in self.template.pieces)


def clip_vote(scorer: Any, items: list[ImageItem], candidates: list[list[str]]) -> list[list[float]]:
    """Each candidate's CLIP similarity to its image."""
    return scorer.score_candidates([item.load() for item in items], candidates)


def best_score(scores: list[float]) -> tuple[int, list[float]]:
    """The index of the highest score (ties keep the earlier captioner) and the scores."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i)), scores


def caption_folder(
    folder: Path, options: CaptionOptions, config: Config, registry: Registry,
    progress: Callable[[int, int], None] | None = None,
) -> CaptionResult:
    """Caption every image of `folder` not yet captioned (with resume) and write the output."""
    if options.vote not in ("consensus", "clip"):
        raise PluginError(f"unknown vote {options.vote!r} (consensus or clip)")
    require_captioners(options.captioners, registry)  # before any output is touched
    filler = TemplateFiller(config) if options.template else None
    if filler is not None and not any(registry.captioners[n].info.get("answers_questions")
                                      for n in options.captioners):
        able = sorted(n for n, c in registry.captioners.items() if c.info.get("answers_questions"))
        raise PluginError("--template needs a captioner that answers questions "
                          f"({', '.join(able) or 'none installed'})")
    items = list_images(folder)
    shard = Shard.from_environment()
    writer = CaptionWriter(folder, options.output, options.overwrite, options.resume, options.caption_extension,
                           options.keep_candidates)
    if writer.sidecars and not (options.resume or options.overwrite):
        existing = next((item.name for item in items if writer.has_caption(item.name)), None)
        if existing is not None:
            raise DatasetError(f"{folder}: `{existing}` already has a caption sidecar: pass --resume to keep existing "
                               "captions and add the missing ones, or --overwrite to replace them")
    todo = [item for item in items if not (options.resume and writer.has_caption(item.name))]
    order = [item.name for item in items]
    main = writer
    if shard.world > 1:
        todo = todo[shard.rank::shard.world]
        shard.wait()  # every process has read the existing output before any shard is written
        if not writer.sidecars:
            writer = CaptionWriter(folder, options.output, options.overwrite, True, options.caption_extension,
                                   options.keep_candidates, shard=shard.name)
    captioners = load_captioners(options.captioners, options, registry)
    names = [n for n, _ in captioners]
    scorer = None
    if options.vote == "clip" and len(captioners) > 1:
        from lora_core.clip_scoring import ClipScorer

        scorer = ClipScorer(options.clip_model, device=options.device, dtype=options.dtype)
    result = CaptionResult(written=0, skipped=len(items) - len(todo), output=main.path,
                           main_process=shard.rank == 0)
    # Each flush rewrites the CSV: at most ~50 of them, and never fewer than 64 images apart.
    chunk = max(64, options.batch_size, len(todo) // 50)
    done = 0
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        drafts: list[list[str]] = []
        for name, captioner in captioners:
            if filler is not None and registry.captioners[name].info.get("answers_questions"):
                answers = run_captioner(captioner, part, filler.questions, options.batch_size, options.workers)
                drafts.append([filler.fill(per_image) for per_image in zip(*answers)])
            else:
                drafts.append(run_captioner(captioner, part, [options.prompt], options.batch_size,
                                            options.workers)[0])
        candidates = [[d[index] for d in drafts] for index in range(len(part))]
        if len(captioners) == 1:
            votes = [(0, [1.0]) for _ in part]
        elif scorer is not None:
            votes = [best_score(s) for s in clip_vote(scorer, part, candidates)]
        else:
            votes = [consensus(c) for c in candidates]
        finals = postprocess([c[best] for c, (best, _) in zip(candidates, votes)], config, registry)
        for item, options_for_item, (best, scores), final in zip(part, candidates, votes, finals):
            detail = {"chosen": names[best], "vote": options.vote,
                      "candidates": dict(zip(names, options_for_item)),
                      "scores": {n: round(s, 4) for n, s in zip(names, scores)}}
            writer.add(item.name, final, detail)
            result.chosen[item.name] = names[best]
        writer.flush(order)
        result.written += len(part)
        done += len(part)
        if progress is not None:
            progress(done, len(todo))
    if shard.world > 1:
        shard.wait()  # every shard is complete on disk
        if shard.rank == 0 and not main.sidecars:
            main.merge_shards()
            main.flush(order)
            main.remove_shards()
        shard.wait()
    elif not writer.sidecars and (not writer.path.exists() or writer.shards_folder.is_dir()):
        writer.flush(order)  # nothing to caption, or shards of an interrupted distributed run taken in
        writer.remove_shards()
    return result

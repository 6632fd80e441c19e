"""What `lorakit caption` is asked to do, and what it did."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.errors import PluginError


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

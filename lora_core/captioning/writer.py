"""Writing captions: a metadata.csv rewritten atomically at each flush, or sidecars; shards of a distributed run."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.errors import DatasetError
from lora_core.protocols import ImageItem

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

    def existing_captions(self, items: Sequence[ImageItem], limit: int = 200) -> list[str]:
        """Up to `limit` captions the set already has (kept with --resume): the conventions a
        captioner may follow (a tagger's underscores, say)."""
        if not self.sidecars:
            return [row["text"] for row in list(self.rows.values())[:limit] if row.get("text", "").strip()]
        found: list[str] = []
        for item in items:
            sidecar = (self.folder / item.name).with_suffix(self.extension)
            try:
                if not sidecar.is_file():
                    continue
                with sidecar.open("rb") as handle:  # a caption is short: a huge file is not read whole
                    text = handle.read(64 << 10).decode("utf-8", errors="replace").strip()
            except OSError:
                continue
            if text:
                found.append(text)
            if len(found) >= limit:
                break
        return found

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
                if not caption.strip():
                    continue  # no caption: no empty file (LK002 reports the image, as it should)
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

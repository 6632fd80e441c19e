"""Undo and redo for `lorakit review`, across restarts: every save is an entry holding each written
caption file's bytes before and after; a dropped image's entry also lists the files it moved
(`from` -> `to`, inside the dataset; the bytes of an image are never copied into the journal).
The journal lives in the dataset's `.lorakit_cache/` as a signed cache document
(toolkit.image_facts.write_cache): a journal that came with a downloaded dataset, or was edited by
hand, is not signed by this machine's key and is ignored, so it can never make lorakit write bytes
somebody planted.

Undoing an entry puts back the `before` bytes of its files, only where each file still holds the
`after` bytes, and moves its files back, only where each is still where it was moved and nothing
has taken its old place (anything else is a conflict, and nothing is written); redo is the
mirror image. Only files inside the dataset are written (the session's rules: no link out, no
read-only file).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JOURNAL_FILE", "Journal", "JournalConflict"]

JOURNAL_FILE = "review-journal-v1.json"
MAX_ENTRIES = 100
MAX_BYTES = 64 * 1024 * 1024  # compressed bytes kept in all; the oldest entries go first


class JournalConflict(Exception):
    """An undo or redo refused: a file no longer holds what the journal expects."""


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def _unpack(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text.encode("ascii")))


def _entries(stack: Any) -> list[dict[str, Any]]:
    """A stack as read back: a list of entries, or empty when it is anything else."""
    if isinstance(stack, list) and all(isinstance(entry, dict) for entry in stack):
        return stack
    return []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Journal:
    """The undo and redo stacks of one dataset (see the module docstring)."""

    root: Path
    undo: list[dict[str, Any]]
    redo: list[dict[str, Any]]

    @classmethod
    def load(cls, root: Path) -> Journal:
        from lora_core.toolkit.image_facts import CACHE_FOLDER, read_cache

        body = read_cache(root / CACHE_FOLDER / JOURNAL_FILE)
        if not isinstance(body, dict) or body.get("root") != os.path.realpath(root):
            return cls(root, [], [])
        return cls(root, _entries(body.get("undo")), _entries(body.get("redo")))

    def _store(self) -> None:
        from lora_core.toolkit.image_facts import CACHE_FOLDER, write_cache

        total = 0
        kept: list[dict[str, Any]] = []
        for entry in reversed(self.undo):  # newest first: the oldest entries are dropped past the limits
            total += sum(len(f["before"]) + len(f["after"]) for f in entry["files"])
            if len(kept) >= MAX_ENTRIES or total > MAX_BYTES:
                break
            kept.append(entry)
        self.undo = list(reversed(kept))
        write_cache(self.root / CACHE_FOLDER / JOURNAL_FILE,
                    {"root": os.path.realpath(self.root), "undo": self.undo, "redo": self.redo})

    def record(self, label: str, changes: dict[Path, tuple[bytes, bytes]],
               moves: list[tuple[Path, Path]] | None = None) -> None:
        """A save: each file's bytes before and after, and the files moved (from, to). A new save
        clears the redo stack."""
        files = [{"path": os.path.relpath(path, self.root), "before": _pack(old), "after": _pack(new),
                  "before_sha": _sha(old), "after_sha": _sha(new)} for path, (old, new) in changes.items()]
        moved = [{"from": os.path.relpath(source, self.root), "to": os.path.relpath(target, self.root)}
                 for source, target in moves or []]
        if files or moved:
            self.undo.append({"label": label, "time": time.time(), "files": files, "moves": moved})
            self.redo = []
            self._store()

    def can_undo(self) -> bool:
        return bool(self.undo)

    def can_redo(self) -> bool:
        return bool(self.redo)

    def undo_last(self) -> list[Path]:
        return self._move(self.undo, self.redo, "after", "before")

    def redo_last(self) -> list[Path]:
        return self._move(self.redo, self.undo, "before", "after")

    def _move(self, source: list[dict[str, Any]], target: list[dict[str, Any]], now: str, then: str) -> list[Path]:
        from lora_core.atomic import write_user_file

        if not source:
            return []
        entry = source[-1]
        plan: list[tuple[Path, bytes]] = []
        for item in entry["files"]:
            path = self._inside(str(item["path"]))
            try:
                current = path.read_bytes()
            except OSError:
                current = None
            if current is None or _sha(current) != item[f"{now}_sha"]:
                raise JournalConflict(f"{path}: changed on disk since lorakit review saved it: not "
                                      f"{'undone' if then == 'before' else 'redone'} (nothing was written)")
            data = _unpack(str(item[then]))
            if _sha(data) != item[f"{then}_sha"]:
                raise JournalConflict(f"{path}: the journal's copy is damaged: nothing was written")
            plan.append((path, data))
        # A move is undone from `to` back to `from` (redone from `from` to `to`), newest first on undo.
        listed = entry.get("moves")
        moves: list[Any] = listed if isinstance(listed, list) else []
        steps = [(self._inside(str(m["to"])), self._inside(str(m["from"]))) if then == "before"
                 else (self._inside(str(m["from"])), self._inside(str(m["to"]))) for m in moves]
        if then == "before":
            steps.reverse()
        verb = "undone" if then == "before" else "redone"
        for here, there in steps:
            problem = (here, "missing") if not os.path.lexists(here) else (there, "exists") \
                if os.path.lexists(there) else None
            if problem is not None:
                raise JournalConflict(f"{problem[0]}: {problem[1]} since lorakit review moved it: not {verb} "
                                      "(nothing was moved or written)")
        done: list[tuple[Path, Path]] = []
        try:
            for here, there in steps:
                there.parent.mkdir(parents=True, exist_ok=True)
                os.rename(here, there)
                done.append((here, there))
        except OSError as exc:
            for here, there in reversed(done):
                os.rename(there, here)
            raise JournalConflict(f"{exc.filename}: cannot be moved ({exc.strerror or exc}): nothing was moved "
                                  "or written") from None
        for path, data in plan:
            write_user_file(path, data, self.root)
        source.pop()
        target.append(entry)
        self._store()
        return [path for path, _ in plan] + [there for _, there in steps]

    def _inside(self, relative: str) -> Path:
        from lora_core.atomic import inside_folder

        path = self.root / relative
        if os.path.isabs(relative) or not inside_folder(path, self.root):
            raise JournalConflict(f"{relative}: outside the dataset: the journal is not used")
        return path

    def summary(self) -> dict[str, Any]:
        return {"undo": len(self.undo), "redo": len(self.redo),
                "next_undo": self.undo[-1]["label"] if self.undo else None,
                "next_redo": self.redo[-1]["label"] if self.redo else None}

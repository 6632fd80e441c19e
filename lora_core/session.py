"""A dataset held open for editing: lint it once, re-lint after each caption edit without reading a
file again, write the edits back atomically, and never overwrite a file another program changed.

`lorakit review` is built on it, and so can an editor plugin or a notebook:

    session = DatasetSession("data/")
    session.violations                          # the whole lint, as `lorakit lint` finds it
    found = session.edit(3, "zyla, red coat")   # caption 3 changed in memory: the new findings
    session.pending()                           # {path: (bytes on disk, bytes to write)}
    session.save()                              # written atomically; the dataset read again

An edit re-runs every rule that reads captions over the in-memory dataset, so dataset-level
findings (coverage, balance, inferred conventions) follow the edit; rules that judge only the
images or load a model (`Rule.relint_on_edit = False`) keep their findings from the last full lint.
Captions are the only thing a session writes, through the dataset's own reader (`render`), with
the same rules as `--fix`: a link out of the dataset, a read-only file or a file changed on disk
since it was read is refused with a `SessionConflict` naming the file, and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lora_core.api import LintOptions, prepare_dataset
from lora_core.datasets.reader import files_as_read
from lora_core.engine import run_rules
from lora_core.errors import OutputError
from lora_core.fixer import allowed, apply_edits, fix_dataset
from lora_core.plugins import Registry, load_plugins
from lora_core.violations import Violation

__all__ = ["DatasetSession", "SessionConflict"]


class SessionConflict(OutputError):
    """A write refused: the file changed on disk since the session read it, or it may not be written."""


class DatasetSession:
    """One dataset open for editing (see the module docstring)."""

    def __init__(self, target: str | os.PathLike[str], options: LintOptions | None = None,
                 registry: Registry | None = None) -> None:
        self.target = Path(target)
        self.generation = 0  # counts the reads from disk (a reload, a save)
        self.options = options or LintOptions()
        self.registry = registry if registry is not None else load_plugins()
        self.reload()

    # -- reading -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the dataset from disk again and lint it whole (after a save, or on request);
        unsaved edits are dropped."""
        self.generation += 1
        self.dataset, self.config, self.rules, self.selection = prepare_dataset(self.target, self.options,
                                                                                self.registry)
        self.live_rules = [rule for rule in self.rules if getattr(rule, "relint_on_edit", True)]
        live = {rule.code for rule in self.live_rules}
        found, self.crashes = run_rules(self.dataset, self.rules, self.selection, self.config, jobs=self.options.jobs)
        self._kept = [v for v in found if v.code not in live]  # image and model rules: not re-run per edit
        self.violations = sorted(found, key=Violation.sort_key)
        self._signatures = {source.path_str: _signature(source.path_str) for source in self.dataset.sources}

    # -- editing -----------------------------------------------------------------------------

    def relint(self) -> list[Violation]:
        """Every finding of the dataset as it is in memory (edits included), without reading files."""
        found, crashes = run_rules(self.dataset, self.live_rules, self.selection, self.config, jobs=1)
        self.crashes = crashes
        self.violations = sorted([*found, *self._kept], key=Violation.sort_key)
        return self.violations

    def edit(self, index: int, caption: str) -> list[Violation]:
        """Set record `index`'s caption in memory (unsaved) and return the dataset's findings."""
        record = self.dataset.records[index]
        if record.caption is None and record.source is None:
            raise SessionConflict(f"{record.image}: has no caption file lorakit can write (caption it first)")
        record.caption = caption
        return self.relint()

    def fixed_caption(self, index: int, violation: Violation) -> str:
        """Record `index`'s caption with `violation`'s fix applied (nothing changes until `edit`)."""
        record = self.dataset.records[index]
        if violation.fix is None or not violation.fix.edits:
            return record.caption or ""
        return apply_edits(record.caption or "", list(violation.fix.edits))

    def fix_all(self, unsafe: bool = False, indexes: Sequence[int] | None = None) -> dict[int, tuple[str, str]]:
        """Apply every allowed fix in memory, as `--fix` would (until the captions settle), to all
        records or only `indexes`: {record index: (caption before, caption after)} of those that
        changed. The edits are pending until `save`; `revert` takes them back."""
        before = {i: r.caption for i, r in enumerate(self.dataset.records)}
        wanted = set(indexes) if indexes is not None else None

        def run() -> list[Violation]:
            found = run_rules(self.dataset, self.live_rules, self.selection, self.config, jobs=1)[0]
            if wanted is None:
                return found
            return [v for v in found if v.record is not None and v.record.index in wanted and allowed(v.fix, unsafe)]

        fix_dataset(self.dataset, run, unsafe)
        self.relint()
        return {i: (before[i] or "", r.caption or "") for i, r in enumerate(self.dataset.records)
                if r.caption != before[i]}

    def revert(self, index: int | None = None) -> None:
        """Drop the unsaved edit of record `index` (or of every record)."""
        for record in self.dataset.records if index is None else [self.dataset.records[index]]:
            record.caption = record.original_caption
        self.relint()

    def unsaved(self) -> list[int]:
        """Indexes of the records whose caption differs from the file's."""
        return [i for i, r in enumerate(self.dataset.records) if r.caption != r.original_caption]

    # -- writing -----------------------------------------------------------------------------

    def pending(self) -> dict[Path, tuple[bytes, bytes]]:
        """{file: (bytes as read, bytes to write)} for every file an edit changes."""
        assert self.dataset.reader is not None
        rendered = self.dataset.reader.render(self.dataset, {})
        as_read = files_as_read(self.dataset, rendered)
        return {path: (as_read.get(path, b""), new) for path, new in rendered.items() if as_read.get(path, b"") != new}

    def changed_on_disk(self) -> list[Path]:
        """Files of the dataset that another program changed (or removed) since the session read them."""
        return [Path(p) for p, signature in self._signatures.items() if _signature(p) != signature]

    def save(self) -> list[Path]:
        """Write every pending edit (each file atomically, as `--fix` writes), then read the dataset
        again. Refuses, writing nothing, when a file to write changed on disk since it was read."""
        from lora_core.atomic import write_user_file

        changes = self.pending()
        for path, (old, _) in changes.items():
            if _read(path) != old:
                raise SessionConflict(f"{path}: changed on disk since it was read (another editor?): not "
                                      "overwritten, nothing was saved; reload to see it, then edit again")
        written: list[Path] = []
        for path, (_, new) in changes.items():
            try:
                write_user_file(path, new, self.dataset.root)
            except OutputError as exc:
                raise SessionConflict(str(exc) + (f" ({len(written)} other file(s) were saved)" if written else "")) \
                    from None
            except OSError as exc:
                raise SessionConflict(f"{path}: cannot be written ({exc.strerror or exc})") from None
            written.append(path)
        if written:
            self.reload()
        return written


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _signature(path: str) -> tuple[int, int, int] | None:
    """What changes when another program rewrites a file (size, modification time, inode), without reading it."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns, info.st_ino

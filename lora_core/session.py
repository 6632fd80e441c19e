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
Captions are what a session writes, through the dataset's own reader (`render`), with the same
rules as `--fix`: a link out of the dataset, a read-only file or a file changed on disk since it was
read is refused with a `SessionConflict` naming the file, and nothing is written.

`drop(index)` takes an image out of the training set without deleting anything: the image and its
companion files (caption sidecars, a trainer's `.npz` cache: same folder, same stem) move into a
`.lorakit_dropped/` folder beside it, which every reader and trainer skips as a hidden folder, and
a metadata file (metadata.csv / .jsonl) loses the record's row. `Dropped` says what moved and
what was rewritten, so a journal can put it back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lora_core.api import LintOptions, prepare_dataset
from lora_core.datasets.reader import files_as_read
from lora_core.engine import run_rules
from lora_core.errors import OutputError
from lora_core.fixer import allowed, apply_edits, fix_dataset
from lora_core.plugins import Registry, load_plugins
from lora_core.violations import Violation

__all__ = ["DROPPED_FOLDER", "DatasetSession", "Dropped", "SessionConflict"]

#: Where `drop` moves an image and its companions: a hidden folder beside the image, which the
#: readers, HF imagefolder, kohya and the other trainers do not read.
DROPPED_FOLDER = ".lorakit_dropped"


class SessionConflict(OutputError):
    """A write refused: the file changed on disk since the session read it, or it may not be written."""


@dataclass
class Dropped:
    """What `DatasetSession.drop` (or its plan) does: files moved (from, to), and files rewritten
    {path: (bytes before, bytes after)} (a metadata file without the record's row)."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    changes: dict[Path, tuple[bytes, bytes]] = field(default_factory=dict)


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

    # -- dropping ----------------------------------------------------------------------------

    def drop_plan(self, index: int) -> Dropped:
        """What dropping record `index` would move and rewrite (nothing is done). Refused with a
        `SessionConflict` over unsaved edits (a metadata file is rewritten: save or revert first),
        and for a file outside the dataset's folder or one already moved away."""
        if self.unsaved():
            raise SessionConflict("unsaved edits: save or revert them before dropping an image")
        dataset = self.dataset
        record = dataset.records[index]
        assert dataset.reader is not None
        changes = self._with_bytes_as_read(dataset.reader.render_without(dataset, [record]))
        sources = {os.path.abspath(source.path_str) for source in dataset.sources}
        listed_elsewhere = {os.path.abspath(r.image_path) for r in dataset.records
                            if r is not record and r.image_path}
        owned: list[str] = []
        image = os.path.abspath(record.image_path) if record.image_path else None
        if image and os.path.lexists(image) and image not in listed_elsewhere:
            owned.append(image)  # an image listed twice stays, for the other row
        if record.source is not None and not changes and os.path.lexists(record.source.path_str):
            owned.append(os.path.abspath(record.source.path_str))  # a sidecar: it moves with its image
        if not owned and not changes:
            raise SessionConflict(f"{record.image}: no file of it is left to drop")
        keep = sources | listed_elsewhere
        files = list(owned)
        for path in owned:
            files += [c for c in _companions(path, keep) if c not in files]
        moves = _targets([Path(f) for f in files], dataset.root)
        return Dropped(moves, changes)

    def drop(self, index: int) -> Dropped:
        """Drop record `index` from the dataset (see the module docstring), then read it again.
        A failure part way moves back what was moved and writes nothing."""
        from lora_core.atomic import write_user_file

        plan = self.drop_plan(index)
        for path, (old, _) in plan.changes.items():
            if _read(path) != old:
                raise SessionConflict(f"{path}: changed on disk since it was read (another editor?): nothing "
                                      "was dropped; reload to see it")
        done: list[tuple[Path, Path]] = []
        try:
            for source, target in plan.moves:
                target.parent.mkdir(parents=True, exist_ok=True)
                if not _safe_folder(target.parent, self.dataset.root):
                    raise SessionConflict(f"{target.parent}: is a link or not a folder: nothing was dropped")
                if os.path.lexists(target):
                    raise SessionConflict(f"{target}: exists: not overwritten, nothing was dropped")
                os.rename(source, target)
                done.append((source, target))
            for path, (_, new) in plan.changes.items():
                write_user_file(path, new, self.dataset.root)
        except (OSError, OutputError) as exc:
            for source, target in reversed(done):
                os.rename(target, source)
            if isinstance(exc, OutputError):
                raise SessionConflict(str(exc)) from None
            raise SessionConflict(f"{exc.filename or index}: cannot be moved ({exc.strerror or exc}): "
                                  "nothing was dropped") from None
        self.reload()
        return plan

    def _with_bytes_as_read(self, rendered: dict[Path, bytes]) -> dict[Path, tuple[bytes, bytes]]:
        as_read = files_as_read(self.dataset, rendered)
        return {path: (as_read.get(path, b""), new) for path, new in rendered.items()}

    # -- writing -----------------------------------------------------------------------------

    def pending(self) -> dict[Path, tuple[bytes, bytes]]:
        """{file: (bytes as read, bytes to write)} for every file an edit changes."""
        assert self.dataset.reader is not None
        rendered = self.dataset.reader.render(self.dataset, {})
        return {path: (old, new) for path, (old, new) in self._with_bytes_as_read(rendered).items() if old != new}

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


def _companions(path: str, keep: set[str]) -> list[str]:
    """Files beside `path` that belong to it: the same stem with another suffix (`a.txt`,
    `a.caption`, `a.npz` for `a.png`), other images excepted (`a.jpg` is a picture of its own)."""
    from lora_core.datasets.reader import IMAGE_EXTENSIONS

    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for other in names:
        full = os.path.join(folder, other)
        other_stem, suffix = os.path.splitext(other)
        # `a.b.txt` is the sidecar of `a.b.png`, not of `a.png`; `a.jpg` is a picture of its own
        if other_stem != stem or other == name or full in keep or suffix.lower() in IMAGE_EXTENSIONS:
            continue
        if os.path.isfile(full):
            found.append(full)
    return found


def _targets(paths: list[Path], root: Path) -> list[tuple[Path, Path]]:
    """(file, where it goes): `.lorakit_dropped/` beside each file, or a numbered folder inside it
    when a file of that name was dropped before. Only files inside the dataset's folder move."""
    from lora_core.atomic import inside_folder

    for path in paths:
        if not inside_folder(path.parent, root):
            raise SessionConflict(f"{path}: outside the dataset's folder {root}: not moved (drop it by hand)")
        if not _safe_folder(path.parent / DROPPED_FOLDER, root):
            raise SessionConflict(f"{path.parent / DROPPED_FOLDER}: is a link or not a folder: nothing was dropped")
    number = 0
    while True:
        sub = DROPPED_FOLDER if number == 0 else os.path.join(DROPPED_FOLDER, str(number))
        moves = [(path, path.parent / sub / path.name) for path in paths]
        if not any(os.path.lexists(target) for _, target in moves):
            return moves
        number += 1


def _safe_folder(folder: Path, root: Path) -> bool:
    """`folder` is absent, or a real folder (not a link) inside the dataset: safe to move into."""
    from lora_core.atomic import inside_folder

    if not os.path.lexists(folder):
        return True
    return not os.path.islink(folder) and os.path.isdir(folder) and inside_folder(folder, root)

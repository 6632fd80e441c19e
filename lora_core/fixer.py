"""Applying fixes: edits on caption text, repeated until nothing more changes (as ruff does).

Fixes never know about file formats: they edit `Record.caption` in memory; the dataset's reader
renders the changed captions back into its own format and the core writes them atomically.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.datasets.model import Dataset, Record
from lora_core.violations import Applicability, Edit, Fix, Violation

MAX_ROUNDS = 25


@dataclass
class FixOutcome:
    applied: int = 0  # number of violations fixed: fixable ones the fixed captions no longer have
    by_code: dict[str, int] = field(default_factory=dict)
    edits: int = 0  # fixes applied: fewer than `applied` when one change fixed several problems
    file_changes: dict[Path, set[str]] = field(default_factory=lambda: defaultdict(set))
    converged: bool = True
    unsettled: set[str] = field(default_factory=set)  # codes still changing captions in the last round
    invalid: list[str] = field(default_factory=list)  # fixes refused: edits outside their caption


def allowed(fix: Fix | None, unsafe: bool) -> bool:
    return fix is not None and (unsafe or fix.applicability is Applicability.SAFE)


def apply_edits(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.replacement + text[edit.end :]
    return text


def fix_dataset(dataset: Dataset, run: Callable[[], list[Violation]], unsafe: bool) -> FixOutcome:
    """Lint, apply every non-overlapping allowed fix, and repeat until the captions stop changing.
    When they have not stopped after MAX_ROUNDS (a fix that re-creates what it fixes), the
    outcome says so (`converged`, `unsettled`) and the caller writes nothing."""
    outcome = FixOutcome()
    fixable: Counter[tuple[Any, str]] = Counter()  # the problems with a fix, as first found
    for round_number in range(MAX_ROUNDS):
        per_record: dict[Record, list[Violation]] = defaultdict(list)
        changed = False
        found = run()
        if round_number == 0:
            fixable = Counter(_problem(v) for v in found if allowed(v.fix, unsafe))
        for violation in found:
            fix = violation.fix
            if not allowed(fix, unsafe):
                continue
            assert fix is not None
            if fix.file_changes and violation.location is not None:
                path = violation.location.path
                new = fix.file_changes - outcome.file_changes[path]
                if new:
                    outcome.file_changes[path] |= new
                    outcome.edits += 1
            if fix.edits and violation.record is not None and violation.record.caption is not None:
                per_record[violation.record].append(violation)
        outcome.unsettled = set()
        for record, violations in per_record.items():
            accepted: list[Edit] = []
            size = len(record.caption or "")
            for violation in sorted(violations, key=lambda v: (min(e.start for e in v.fix.edits), v.code)):  # type: ignore[union-attr]
                edits = list(violation.fix.edits)  # type: ignore[union-attr]
                bad = next((e for e in edits if not 0 <= e.start <= e.end <= size), None)
                if bad is not None:  # a (plugin) rule's edit outside the caption: never applied
                    note = (f"rule {violation.code} offered a fix with an edit at {bad.start}..{bad.end} of a "
                            f"{size}-character caption ({violation.image or 'a caption'}); not applied")
                    if note not in outcome.invalid:
                        outcome.invalid.append(note)
                    continue
                if any(_overlaps(e, a) for e in edits for a in accepted):
                    continue  # applied in a later round, against the updated caption
                accepted.extend(edits)
                outcome.edits += 1
                outcome.unsettled.add(violation.code)
            new_caption = apply_edits(record.caption or "", accepted)
            if new_caption != record.caption:
                record.caption = new_caption
                changed = True
        if not changed:
            # One count for "fixable", "would fix" and "fixed": the problems that had a fix and are
            # gone now, however many edits that took (two rules asking for the same change, or one
            # edit that also settles its neighbour, are one edit and two problems fixed).
            # A file-level fix (a byte-order mark dropped) is applied when the file is written, so
            # the last lint still reports it: it is fixed all the same.
            left = Counter(_problem(v) for v in found if not _settled_in_file(v, outcome, unsafe))
            for (key, code), count in fixable.items():
                gone = max(0, count - left.get((key, code), 0))
                if gone:
                    outcome.applied += gone
                    outcome.by_code[code] = outcome.by_code.get(code, 0) + gone
            return outcome
    outcome.converged = False
    return outcome


def _settled_in_file(violation: Violation, outcome: FixOutcome, unsafe: bool) -> bool:
    fix = violation.fix
    if fix is None or fix.edits or not fix.file_changes or violation.location is None or not allowed(fix, unsafe):
        return False
    return fix.file_changes <= outcome.file_changes.get(violation.location.path, set())


def _problem(violation: Violation) -> tuple[Any, str]:
    """What a problem is about, stable across fix rounds (captions change, their records do not)."""
    if violation.record is not None:
        return id(violation.record), violation.code
    return (str(violation.location.path) if violation.location is not None else None), violation.code


def _overlaps(a: Edit, b: Edit) -> bool:
    if a.start == a.end or b.start == b.end:  # insertions conflict only at the same point or inside
        return b.start < a.start < b.end or a.start < b.start < a.end or a.start == b.start
    return a.start < b.end and b.start < a.end



"""What a rule reports: a Violation at a Location, optionally carrying a Fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "Applicability",
    "Edit",
    "Fix",
    "Location",
    "Severity",
    "Violation",
]

if TYPE_CHECKING:
    from lora_core.datasets.model import Record


class Severity(str, enum.Enum):
    """How bad a violation is. Only errors fail a lint (and block training) unless --strict."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r} (expected error, warning or info)") from None


class Applicability(str, enum.Enum):
    """Whether a fix keeps the caption's meaning (safe) or may change wording (unsafe), as in ruff."""

    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Edit:
    """Replace caption[start:end] with `replacement` (offsets into the caption text, not the file)."""

    start: int
    end: int
    replacement: str


@dataclass(frozen=True)
class Fix:
    """A change that resolves a violation.

    `edits` change the caption of the violation's record. `file_changes` are whole-file
    normalisations the dataset writer knows how to do ("strip-bom", "normalize-newlines"), for
    problems that live in the file rather than in one caption.
    """

    description: str
    applicability: Applicability = Applicability.SAFE
    edits: tuple[Edit, ...] = ()
    file_changes: frozenset[str] = frozenset()

    @classmethod
    def replace(
        cls, description: str, start: int, end: int, text: str, applicability: Applicability = Applicability.SAFE
    ) -> Fix:
        return cls(description, applicability, (Edit(start, end, text),))

    @classmethod
    def set_caption(
        cls, description: str, old: str, new: str, applicability: Applicability = Applicability.SAFE
    ) -> Fix:
        """A fix that rewrites the whole caption (for changes that touch many places at once)."""
        return cls(description, applicability, (Edit(0, len(old), new),))


@dataclass(frozen=True, slots=True)
class Location:
    """1-based line and column (in characters) inside `path`; end is exclusive, may be absent."""

    path: Path
    line: int = 1
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None


@dataclass(slots=True)  # hundreds of thousands on a big dataset: no __dict__ each
class Violation:
    """One problem found by one rule."""

    code: str
    name: str
    severity: Severity
    message: str
    location: Location | None
    image: str | None = None
    fix: Fix | None = None
    # The record the violation is about, and the span of the caption it points at (caption offsets).
    record: Record | None = field(default=None, repr=False, compare=False)
    span: tuple[int, int] | None = None
    plugin: str = ""
    # Rule-specific numbers a machine reader may want (e.g. a share or a score); shown in JSON.
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fixable(self) -> bool:
        return self.fix is not None

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.code)
        return (str(loc.path), loc.line, loc.column, self.code)

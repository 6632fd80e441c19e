"""The Rule base class: metadata plus one or two check methods.

A rule is a small class. Its docstring is its documentation (`lorakit rule CODE`, docs/rules.md)
and uses ruff's sections: "What it does", "Why it matters", "Example", "Fix". Options it reads
from the config are declared in `options` and listed automatically.

A rule overrides `check_record` (called once per captioned record) and/or `check_dataset`
(called once per dataset, for cross-record checks). Both yield Violations built with the
helpers below, so a rule never fills in its own code, name or severity.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lora_core.datasets.model import Dataset, Record
from lora_core.violations import Applicability, Fix, Location, Severity, Violation

CODE_PATTERN = re.compile(r"^[A-Z]{1,4}[0-9]{3,4}$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class RuleOption:
    """A config key a rule reads, for the docs (`section.key`, e.g. "dataset.caption-extension")."""

    key: str
    description: str


@dataclass
class LintContext:
    """What rules may look at besides the record: the dataset and the resolved config sections."""

    dataset: Dataset
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        return self.settings.get(name, {})


class Rule:
    """Base class for lint rules. Subclasses set the class attributes and a docstring."""

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.WARNING
    #: The kind of fix this rule can offer, or None when it never fixes anything.
    fix: ClassVar[Applicability | None] = None
    options: ClassVar[tuple[RuleOption, ...]] = ()
    #: Rules that are off unless selected explicitly by code or prefix (never by the default).
    opt_in: ClassVar[bool] = False

    # Set by the registry when the rule is registered.
    plugin: str = ""

    def check_record(self, record: Record, ctx: LintContext) -> Iterable[Violation]:
        return ()

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        return ()

    # -- helpers for building violations -------------------------------------------------------

    def _violation(self, message: str, location: Location | None, **kw: Any) -> Violation:
        return Violation(self.code, self.name, self.severity, message, location, plugin=self.plugin, **kw)

    def at_caption(
        self, record: Record, message: str, span: tuple[int, int] | None = None, fix: Fix | None = None,
        **data: Any,
    ) -> Violation:
        """A violation pointing into the caption (at span, or at its start)."""
        start, end = span if span is not None else (0, None)
        return self._violation(
            message, record.caption_location(start, end), image=record.image, fix=fix, record=record,
            span=span, data=data,
        )

    def at_image(self, record: Record, message: str, **data: Any) -> Violation:
        """A violation pointing at the record's image name (the file_name cell)."""
        return self._violation(message, record.image_location(), image=record.image, record=record, data=data)

    def at(
        self, location: Location | Path, message: str, image: str | None = None, fix: Fix | None = None,
        **data: Any,
    ) -> Violation:
        """A violation at an explicit place (file-level problems, images without a record)."""
        if isinstance(location, Path):
            location = Location(location)
        return self._violation(message, location, image=image, fix=fix, data=data)

    # -- documentation ------------------------------------------------------------------------

    @classmethod
    def explanation(cls) -> str:
        """The rule's docstring as Markdown, with the options section generated."""
        doc = inspect.cleandoc(cls.__doc__ or "")
        if cls.options:
            doc += "\n\n## Options\n" + "\n".join(f"- `{o.key}`: {o.description}" for o in cls.options)
        return doc

    def metadata(self) -> dict[str, Any]:
        """The JSON form used by `lorakit rules --format json` and the SARIF rule list."""
        return {
            "code": self.code,
            "name": self.name,
            "summary": self.summary,
            "severity": self.severity.value,
            "fix": self.fix.value if self.fix else None,
            "opt_in": self.opt_in,
            "options": [o.key for o in self.options],
            "plugin": self.plugin,
            "explanation": self.explanation(),
        }

    @property
    def checks_records(self) -> bool:
        return type(self).check_record is not Rule.check_record

    @property
    def checks_dataset(self) -> bool:
        return type(self).check_dataset is not Rule.check_dataset

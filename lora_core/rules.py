"""The Rule base class: metadata plus one or two check methods.

A rule is a small class. Its docstring is its documentation (`lorakit rule CODE`, docs/rules.md)
and uses ruff's sections: "What it does", "Why it matters", "Example", "Fix". Options it reads
from the config are declared in `options` and listed automatically.

A rule overrides `check_record` (called once per captioned record) and/or `check_dataset`
(called once per dataset, for cross-record checks). Both yield Violations built with the
helpers below, so a rule never fills in its own code, name or severity.
"""

from __future__ import annotations

import bisect
import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lora_core.datasets.model import Dataset, Record
from lora_core.hookspecs import hookimpl
from lora_core.toolkit.terms import Terms
from lora_core.violations import Applicability, Fix, Location, Severity, Violation

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "Corpus",
    "LintContext",
    "Rule",
    "RuleOption",
    "RulePack",
]

CODE_PATTERN = re.compile(r"^[A-Z]{1,4}[0-9]{3,4}$")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class RuleOption:
    """A config key a rule reads, for the docs (`section.key`, e.g. "dataset.caption-extension")."""

    key: str
    description: str


_WORDS = re.compile(r"\w+")


def _boundaries(data: bytes, sep: str) -> list[int]:
    """Start offsets of the captions in a joined corpus (sep + c0 + sep + c1 ... + sep)."""
    return [m.end() for m in re.finditer(re.escape(sep.encode("utf-8", "surrogateescape")), data)][:-1]


def _hit_ends(data: bytes, needles: Iterable[bytes]) -> Iterator[int]:
    """The offset of the last byte of every occurrence of every needle."""
    for needle in needles:
        at = data.find(needle)
        while at != -1:
            yield at + len(needle) - 1
            at = data.find(needle, at + 1)


def _scan(data: bytes, starts: list[int], needles: Iterable[bytes]) -> set[int]:
    """Indexes of the captions holding any needle (by the offset of the needle's last byte)."""
    return {bisect.bisect_right(starts, end) - 1 for end in _hit_ends(data, needles)}


def _scan_counting(data: bytes, sep: bytes, needles: Iterable[bytes]) -> set[int]:
    """`_scan` for a joined corpus whose caption offsets are not known: the hits, in order, are
    mapped to captions by counting the separators between one hit and the next (one pass over
    the data, in C, instead of first finding every caption's start)."""
    found: set[int] = set()
    index, counted = -1, 0
    for end in sorted(_hit_ends(data, needles)):  # a hit ending on a separator belongs to the caption before it
        index += data.count(sep, counted, end)
        counted = end
        found.add(index)
    return found


def _not_ascii(text: str) -> bool:
    return not text.isascii()


class Corpus:
    """Every caption of a dataset joined into one string, so that a rule can scan all captions
    with one regular expression in C instead of one Python call per caption.

    Captions are joined with a `sep` character that occurs in none of them, with `sep` before
    the first and after the last caption too, so `(?<=SEP)` and `(?=SEP)` act as caption start
    and end anchors. Patterns must not match `sep` itself (use `ctx.corpus.sep` when building
    them); `matches()` maps every match back to its record and caption offsets.
    """

    _CANDIDATES = ("\x1f", "\x1e", "\ue000", "\U0010fffd")

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        captions = [r.caption or "" for r in records]
        # The usual candidates first; a dataset holding all of them (a hostile one) gets a free
        # private-use character: there are 6,400 and captions cannot hold them all.
        candidates = itertools.chain(self._CANDIDATES, map(chr, range(0xE001, 0xF900)))
        for sep in candidates:
            text = sep + sep.join(captions) + sep if captions else sep  # no captions: one separator
            if text.count(sep) == len(captions) + 1:
                break
        self.sep = sep
        self.text = text
        self.captions = captions
        self.starts = list(itertools.accumulate((len(c) + 1 for c in captions), initial=1))[:-1]
        self._folded: list[str] | None = None
        self._bytes: tuple[bytes, list[int]] | None = None
        self._folded_bytes: tuple[bytes, list[int]] | None = None

    @property
    def folded(self) -> list[str]:
        """Every caption casefolded (computed once, in one pass over the corpus)."""
        if self._folded is None:
            # Lower-casing bytes is ~30x faster than str.casefold and exact for ASCII captions;
            # the (few) others are casefolded one by one.
            data = self.text.encode("utf-8", "surrogateescape").lower()
            pieces = data.decode("utf-8", "surrogateescape").split(self.sep)[1:-1]
            if len(pieces) != len(self.captions):  # pragma: no cover - lower() never makes a separator
                pieces = list(self.captions)
            for index in itertools.compress(itertools.count(), map(_not_ascii, pieces)):
                pieces[index] = self.captions[index].casefold()
            self._folded = pieces
            if self.text.isascii():  # (a flag test, not a scan) the bytes are the folded corpus
                self._folded_bytes = (data, self.starts)
        return self._folded

    def record_at(self, offset: int) -> tuple[Record, int]:
        """The record whose caption holds corpus offset `offset`, and that caption's start."""
        index = bisect.bisect_right(self.starts, offset) - 1
        return self.records[index], self.starts[index]

    def matches(self, pattern: re.Pattern[str]) -> Iterator[tuple[Record, int, int, re.Match[str]]]:
        """(record, start, end, match) for every match, start/end as offsets in the caption."""
        for m in pattern.finditer(self.text):
            record, base = self.record_at(m.start())
            yield record, m.start() - base, m.end() - base, m

    def containing(self, literals: Iterable[str], transform: Callable[[bytes], bytes] | None = None) -> list[Record]:
        """Records whose caption contains any of the literals, found by substring search over the
        corpus as UTF-8 bytes (a str holding any non-ASCII character is 2-4 bytes per character
        to scan; the bytes are 1 for the ASCII bulk of captions).

        `sep` in a literal stands for a caption boundary (`sep + " "`: a caption starting with a
        space). `transform` may rewrite the bytes first (e.g. remove blanks) as long as it keeps
        every separator, and keep every byte in place if it keeps the length (a translate table
        does); hits are mapped to captions by counting separators in the result otherwise."""
        data, starts = self._encoded()
        needles = [literal.encode("utf-8", "surrogateescape") for literal in literals]
        transformed = data if transform is None else transform(data)
        if len(transformed) == len(data):
            found = _scan(transformed, starts, needles)
        else:
            found = _scan_counting(transformed, self.sep.encode("utf-8", "surrogateescape"), needles)
        return [self.records[i] for i in sorted(found)]

    def _encoded(self) -> tuple[bytes, list[int]]:
        if self._bytes is None:
            data = self.text.encode("utf-8", "surrogateescape")
            # ASCII: byte offsets are character offsets. Otherwise find the separators again.
            self._bytes = (data, self.starts if self.text.isascii() else _boundaries(data, self.sep))
        return self._bytes

    def with_substring(self, text: str) -> list[int]:
        """Indexes of the captions whose casefolded text contains `text`. A rare substring is
        found by scanning the joined corpus as bytes, then one step per occurrence; a common one
        by one C-level test per caption."""
        needle = text.casefold()
        data, starts = self.folded_encoded()
        encoded = needle.encode("utf-8", "surrogateescape")
        limit = len(starts) // 16
        found: set[int] = set()
        at = data.find(encoded)
        while at != -1:
            found.add(bisect.bisect_right(starts, at) - 1)
            if len(found) > limit:  # common: one C-level test per caption is cheaper
                tests = map(str.__contains__, self.folded, itertools.repeat(needle))
                return list(itertools.compress(itertools.count(), tests))
            at = data.find(encoded, at + 1)
        return sorted(found)

    def folded_encoded(self) -> tuple[bytes, list[int]]:
        """The casefolded corpus as UTF-8 bytes (`sep` around every caption), and where each
        caption starts in it."""
        if self._folded_bytes is None:
            data = (self.sep + self.sep.join(self.folded) + self.sep).encode("utf-8", "surrogateescape")
            self._folded_bytes = (data, _boundaries(data, self.sep))
        return self._folded_bytes

    def having(self, terms: Terms) -> set[int]:
        """Indexes of the captions in which some term matches (substring prefilter, then the
        term regex mapped over the candidates in C)."""
        if not terms:
            return set()
        candidates: set[int] = set()
        for term in terms.terms:
            words = _WORDS.findall(term)
            if not words:
                return {i for i, c in enumerate(self.captions) if terms.search(c)}
            candidates.update(self.with_substring(max(words, key=len)))
        ordered = sorted(candidates)
        assert terms.pattern is not None  # terms is not empty
        hits = map(terms.pattern.search, map(self.captions.__getitem__, ordered))
        return set(itertools.compress(ordered, hits))

    def term_matches(self, terms: Terms) -> Iterator[tuple[Record, int, int, re.Match[str]]]:
        """Like `matches(terms.pattern)`, in caption order, but the regular expression only runs
        on captions that contain the longest word of some term (`with_substring`)."""
        if not terms:
            return
        candidates: set[int] = set()
        for term in terms.terms:
            words = _WORDS.findall(term)
            if not words:  # a term without word characters: search every caption
                candidates = set(range(len(self.records)))
                break
            candidates.update(self.with_substring(max(words, key=len)))
        pattern = terms.pattern
        assert pattern is not None  # terms is not empty
        for i in sorted(candidates):
            record = self.records[i]
            for m in pattern.finditer(self.captions[i]):
                yield record, m.start(), m.end(), m

class LintContext:
    """What rules may look at besides the record: the dataset, the resolved config sections,
    and the caption corpus (built on first use, once per lint run)."""

    def __init__(self, dataset: Dataset, settings: dict[str, dict[str, Any]] | None = None,
                 config_path: Path | None = None, present: set[str] | None = None,
                 lexicon: list[Any] | None = None) -> None:
        self.dataset = dataset
        self.lexicon = lexicon or []  # plugins' additions to the inference lexicons
        self.settings = settings or {}
        self.config_path = config_path  # the config file, for rules that check its values (LK7xx)
        self.present = present if present is not None else set()  # sections the config file has
        self._corpus: Corpus | None = None
        self._captioned: list[Record] | None = None
        self._memo: dict[object, Any] = {}

    def memo(self, key: object, compute: Callable[[], Any]) -> Any:
        """Share one computation between rules of a run (e.g. LK201 and LK204 both need the
        captions that lack a style term)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def memoized(self, key: object) -> Any:
        """What `memo` computed for `key` so far, or None (to reuse a richer result when present)."""
        return self._memo.get(key)

    def section(self, name: str) -> dict[str, Any]:
        return self.settings.get(name, {})

    def has_section(self, name: str) -> bool:
        """True when the config file sets `[name]` (not just its defaults)."""
        return name in self.present

    def has_key(self, section: str, key: str) -> bool:
        """True when the config file sets `key` in `[section]` explicitly (even to an empty value:
        `trigger = ""` says "no trigger", and nothing is inferred in its place)."""
        return f"{section}.{key}" in self.present

    @property
    def captioned(self) -> list[Record]:
        """Records that have caption text."""
        if self._captioned is None:
            self._captioned = self.dataset.captioned
        return self._captioned

    @property
    def corpus(self) -> Corpus:
        if self._corpus is None:
            self._corpus = Corpus(self.captioned)
        return self._corpus


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
    #: Relative cost of a run over the whole dataset, about 25 ms a unit for 100,000 captions on
    #: the dev VM (bench/bench_lint.py --per-rule): the parallel workers take the heaviest first.
    cost: ClassVar[int] = 1
    #: Rules with the same non-empty value share work through `ctx.memo` (or a loaded model) and
    #: run in the same worker process.
    shares: ClassVar[str] = ""
    #: True when this rule's fixes also shape fresh machine captions in `lorakit caption`: all of
    #: them, unsafe ones included (they rewrite a captioner's draft, never a human's caption).
    postprocess_captions: ClassVar[bool] = False
    #: False for rules whose findings a caption edit cannot change or that load a model (image
    #: rules, CLIP rules): a live re-lint after an edit (lora_core.session, `lorakit review`) keeps
    #: their findings from the last full lint instead of running them per keystroke.
    relint_on_edit: ClassVar[bool] = True

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
        options = "\n".join(f"- `{o.key}`: {o.description}" for o in cls.options) or "None."
        return doc + "\n\n## Options\n" + options

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


class RulePack:
    """A plugin that registers rules and the config sections they read: a rule pack in one line.

        plugin = RulePack(RULES, config=[STYLE_SECTION])   # entry point: "mypack.module:plugin"
    """

    def __init__(self, rules: Iterable[type[Rule]], config: Iterable[Any] = ()) -> None:
        self.rules = tuple(rules)
        self.config = tuple(config)

    @hookimpl
    def register_rules(self, register: Callable[[type], None]) -> None:
        for rule in self.rules:
            register(rule)

    @hookimpl
    def register_config(self, register: Callable[[Any], None]) -> None:
        for section in self.config:
            register(section)

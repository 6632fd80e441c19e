"""The rule engine: which rules run (select / ignore / severity / per-image ignores) and running them.

Selection follows ruff: a selector is "ALL", a code prefix ("LK1", "LK10"), a full code or a rule
name; when a rule matches both a select and an ignore selector, the more specific one wins, and
ignore wins a tie. Opt-in rules only run when a selector other than "ALL" names them.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lora_core.config import Config
from lora_core.datasets.model import Dataset, Record
from lora_core.errors import ConfigError, LorakitError
from lora_core.rules import LintContext, Rule
from lora_core.violations import Location, Severity, Violation

_NAME_SPECIFICITY = 1000  # a rule name is as specific as a full code


@dataclass(frozen=True)
class RuleCrash:
    """A rule raised while checking; reported against its plugin and code (exit code 2)."""

    code: str
    plugin: str
    error: str
    location: Location | None
    detail: str = ""

    def describe(self) -> str:
        where = ""
        if self.location is not None:
            where = f" on {self.location.path}:{self.location.line}"
        return f"rule {self.code} (plugin {self.plugin!r}) crashed{where}: {self.error}"


@dataclass
class Selection:
    """The resolved `[lint]` selection settings."""

    select: list[str] = field(default_factory=lambda: ["ALL"])
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    per_image_ignores: dict[str, list[str]] = field(default_factory=dict)
    origin: str = "configuration"  # where the settings came from, for error messages

    @classmethod
    def from_settings(cls, lint: dict[str, Any], origin: str) -> Selection:
        return cls(
            select=list(lint.get("select", ["ALL"])),
            extend_select=list(lint.get("extend-select", [])),
            ignore=list(lint.get("ignore", [])),
            severity=dict(lint.get("severity", {})),
            per_image_ignores=dict(lint.get("per-image-ignores", {})),
            origin=origin,
        )

    def enabled_rules(self, rules: dict[str, Rule]) -> list[Rule]:
        select = self.select + self.extend_select
        for selector in (*select, *self.ignore, *(c for codes in self.per_image_ignores.values() for c in codes)):
            _check_selector(selector, rules, self.origin)
        for key in self.severity:
            if _specificity(key, rules.get(key.upper()) or _by_name(rules, key)) != _NAME_SPECIFICITY:
                raise ConfigError(
                    f"{self.origin}: [lint] severity: unknown rule {key!r} (use a full code such as LK107)")
        enabled = []
        for rule in rules.values():
            chosen = max((_specificity(s, rule) for s in select), default=-1)
            if rule.opt_in:
                chosen = max((_specificity(s, rule) for s in select if s.upper() != "ALL"), default=-1)
            ignored = max((_specificity(s, rule) for s in self.ignore), default=-1)
            if chosen >= 0 and chosen > ignored:
                enabled.append(rule)
        return sorted(enabled, key=lambda r: r.code)

    def severity_of(self, rule: Rule) -> Severity | None:
        """The severity configured for this rule, or None to keep what the rule reported (its
        default, or a stronger one it chose, as LK701 does for small datasets)."""
        for key in (rule.code, rule.name):
            for configured, value in self.severity.items():
                if configured.upper() == key.upper():
                    return Severity.parse(value)
        return None

    def ignored_for_image(self, image: str | None, rule: Rule) -> bool:
        if image is None or not self.per_image_ignores:
            return False
        basename = image.rsplit("/", 1)[-1]
        for pattern, codes in self.per_image_ignores.items():
            if fnmatch.fnmatchcase(image, pattern) or ("/" not in pattern and fnmatch.fnmatchcase(basename, pattern)):
                if any(_specificity(c, rule) >= 0 for c in codes):
                    return True
        return False


def _by_name(rules: dict[str, Rule], name: str) -> Rule | None:
    return next((r for r in rules.values() if r.name == name.lower()), None)


def _specificity(selector: str, rule: Rule | None) -> int:
    """How specifically `selector` matches `rule` (-1: not at all)."""
    if rule is None:
        return -1
    sel = selector.strip()
    if sel.upper() == "ALL":
        return 0
    if sel.lower() == rule.name:
        return _NAME_SPECIFICITY
    if rule.code.startswith(sel.upper()) and sel[:1].isalpha():
        return _NAME_SPECIFICITY if len(sel) == len(rule.code) else len(sel)
    return -1


def _check_selector(selector: str, rules: dict[str, Rule], origin: str) -> None:
    if any(_specificity(selector, rule) >= 0 for rule in rules.values()):
        return
    if selector.strip().upper() == "ALL":
        return
    raise ConfigError(
        f"{origin}: unknown rule selector {selector!r} (no rule code starts with it and no rule has that "
        "name; see `lorakit rules`, or install the plugin that provides it)"
    )


#: Below this many captions a second process costs more than it saves.
PARALLEL_MIN_CAPTIONS = 20_000


def default_jobs(dataset: Dataset) -> int:
    """2 worker processes for big datasets on Linux (fork shares the dataset for free), else 1.

    Never in a process that runs other threads (lorakit used as a library in a server or a GUI):
    forking a multi-threaded process can deadlock the child."""
    if sys.platform != "linux" or (os.cpu_count() or 1) < 2 or len(dataset.records) < PARALLEL_MIN_CAPTIONS:
        return 1
    if threading.active_count() > 1:
        return 1
    return 2


def run_rules(
    dataset: Dataset, rules: Sequence[Rule], selection: Selection, config: Config,
    jobs: int | None = None,
) -> tuple[list[Violation], list[RuleCrash]]:
    """Run every rule over a dataset. A crashing rule is recorded and the others keep going.

    With jobs > 1 the rules are split, by their `cost` hint, between this process and forked
    children that inherit the dataset (copy-on-write) and send back only their violations."""
    jobs = default_jobs(dataset) if jobs is None else jobs
    groups = _partition(rules, jobs) if jobs > 1 and len(rules) > 1 else [list(rules)]
    ctx = LintContext(dataset, config.sections, config.path, config.present)
    if len(groups) > 1:
        _ = ctx.corpus.folded  # built once here and inherited by the workers, not built in each
    children = [_start_child(ctx, group) for group in groups[1:]]
    found, crashes = _check(ctx, groups[0])
    for group, child in zip(groups[1:], children):
        result = _join_child(dataset, child)
        if result is None:  # the child died (killed, out of memory): do its share here
            result = _check(ctx, group)
        found += result[0]
        crashes += result[1]
    by_code = {rule.code: rule for rule in rules}
    violations = [v for v in _finalise(found, by_code, selection)]
    return violations, crashes


def _check(ctx: LintContext, rules: Sequence[Rule]) -> tuple[list[Violation], list[RuleCrash]]:
    dataset = ctx.dataset
    records = ctx.captioned
    violations: list[Violation] = []
    crashes: list[RuleCrash] = []
    for rule in rules:
        found: list[Violation] = []
        current: Record | None = None
        try:
            if rule.checks_records:
                check = rule.check_record
                for current in records:
                    found.extend(check(current, ctx))
            current = None
            if rule.checks_dataset:
                found.extend(rule.check_dataset(dataset, ctx))
        except LorakitError:
            raise  # a user-facing problem (a missing model, a bad setting): one clean line, not a crash
        except Exception as exc:
            import traceback

            location = current.caption_location() if current is not None else None
            crashes.append(
                RuleCrash(rule.code, rule.plugin, f"{type(exc).__name__}: {exc}", location,
                          "".join(traceback.format_exception(exc)))
            )
            continue
        violations.extend(found)
    return violations, crashes


def _partition(rules: Sequence[Rule], jobs: int) -> list[list[Rule]]:
    """Greedy balance by cost: the most expensive rule goes to the least loaded group."""
    units: dict[str, list[Rule]] = {}
    for rule in rules:  # rules that share work stay together
        units.setdefault(rule.shares or f"\0{rule.code}", []).append(rule)
    groups: list[list[Rule]] = [[] for _ in range(jobs)]
    load = [0] * jobs
    for unit in sorted(units.values(), key=lambda u: -sum(r.cost for r in u)):
        lightest = load.index(min(load))
        groups[lightest].extend(unit)
        load[lightest] += sum(r.cost for r in unit)
    return [g for g in groups if g]


def _start_child(ctx: LintContext, rules: list[Rule]):
    import multiprocessing

    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(
        target=_child_main, args=(ctx, rules, sender), daemon=True)
    process.start()
    sender.close()
    return process, receiver


def _child_main(ctx: LintContext, rules: list[Rule], sender) -> None:
    try:
        violations, crashes = _check(ctx, rules)
    except LorakitError as exc:
        sender.send(("error", exc))
        sender.close()
        return
    # Records stay behind (the parent has them): send their index instead.
    portable = [(replace(v, record=None), v.record.index if v.record is not None else -1) for v in violations]
    sender.send((portable, crashes))
    sender.close()


def _join_child(dataset: Dataset, child) -> tuple[list[Violation], list[RuleCrash]] | None:
    process, receiver = child
    try:
        portable, crashes = receiver.recv()
    except EOFError:
        portable = None
    process.join()
    receiver.close()
    if portable is None:
        return None
    if isinstance(portable, str) and portable == "error":
        raise crashes  # the child's LorakitError, raised here
    records = dataset.records
    violations = []
    for violation, index in portable:
        if index >= 0:
            violation.record = records[index]
        violations.append(violation)
    return violations, crashes


def _finalise(found: Iterable[Violation], rules: dict[str, Rule], selection: Selection) -> Iterable[Violation]:
    severities = {code: selection.severity_of(rule) for code, rule in rules.items()}
    for violation in found:
        rule = rules[violation.code]
        if selection.ignored_for_image(violation.image, rule):
            continue
        severity = severities[violation.code]
        if severity is not None:
            violation.severity = severity
        yield violation

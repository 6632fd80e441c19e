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
from dataclasses import dataclass, field
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

    With jobs > 1, forked children that inherit the dataset (copy-on-write) and this process take
    the rules from one shared queue, heaviest first (by their `cost` hint), each taking the next
    as soon as it is free: no process waits while another still has a queue of its own. Children
    send back only their violations; results are merged in queue order, whoever ran what."""
    jobs = default_jobs(dataset) if jobs is None else jobs
    units = rule_units(rules)
    ctx = LintContext(dataset, config.sections, config.path, config.present, config.lexicon)
    parallel = jobs > 1 and len(units) > 1
    results = _run_shared(ctx, units, jobs) if parallel else [_check(ctx, unit) for unit in units]
    found = [v for violations, _ in results for v in violations]
    crashes = [c for _, unit_crashes in results for c in unit_crashes]
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
        except (Exception, SystemExit) as exc:  # SystemExit: a rule calling sys.exit() is a crash too
            import traceback

            location = current.caption_location() if current is not None else None
            crashes.append(
                RuleCrash(rule.code, rule.plugin, f"{type(exc).__name__}: {exc}", location,
                          "".join(traceback.format_exception(exc)))
            )
            continue
        violations.extend(found)
    return violations, crashes


def rule_units(rules: Sequence[Rule]) -> list[list[Rule]]:
    """The rules as units of work, heaviest first: rules that share work (`shares`) form one unit."""
    units: dict[str, list[Rule]] = {}
    for rule in rules:
        units.setdefault(rule.shares or f"\0{rule.code}", []).append(rule)
    return sorted(units.values(), key=lambda unit: -sum(r.cost for r in unit))


Results = dict[int, tuple[list[Violation], list[RuleCrash]]]


def _run_shared(ctx: LintContext, units: list[list[Rule]], jobs: int) -> list[tuple[list[Violation], list[RuleCrash]]]:
    import multiprocessing

    forking = multiprocessing.get_context("fork")
    queue = forking.Value("i", 0)  # the index of the next unit to take, in shared memory
    _ = ctx.corpus.folded  # built once here and inherited by the workers, not built in each
    children = [_start_child(forking, ctx, units, queue) for _ in range(jobs - 1)]
    try:
        results = _take_units(ctx, units, queue)
        for child in children:
            got = _join_child(ctx.dataset, child)
            if got is not None:
                results.update(got)
    finally:
        for process, _ in children:
            if process.is_alive():  # this process failed first: do not leave a worker behind
                process.kill()
    for index, unit in enumerate(units):
        if index not in results:  # a worker died (killed, out of memory): do its share here
            results[index] = _check(ctx, unit)
    return [results[index] for index in range(len(units))]


def _take_units(ctx: LintContext, units: list[list[Rule]], queue: Any) -> Results:
    done: Results = {}
    while True:
        with queue.get_lock():
            index = queue.value
            queue.value = index + 1
        if index >= len(units):
            return done
        done[index] = _check(ctx, units[index])


def _start_child(forking: Any, ctx: LintContext, units: list[list[Rule]], queue: Any) -> tuple[Any, Any]:
    receiver, sender = forking.Pipe(duplex=False)
    process = forking.Process(target=_child_main, args=(ctx, units, queue, sender, receiver), daemon=True)
    process.start()
    sender.close()
    return process, receiver


def die_with_parent() -> None:
    """In a forked child: be killed when the parent dies (OOM killer, CI timeout, kill -9), rather
    than live on holding the parent's stdout open. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(ctx: LintContext, units: list[list[Rule]], queue: Any, sender: Any, receiver: Any = None) -> None:
    die_with_parent()
    if receiver is not None:
        receiver.close()  # only the parent reads: a dead parent then means a broken pipe here, not a hang
    try:
        results = _take_units(ctx, units, queue)
    except LorakitError as exc:
        sender.send(("error", exc))
        sender.close()
        return
    # Records stay behind (the parent has them): send their index instead. This process ends
    # here, so its violations can lose their records in place rather than be copied.
    portable = {}
    for index, (violations, crashes) in results.items():
        record_indexes = [v.record.index if v.record is not None else -1 for v in violations]
        for violation in violations:
            violation.record = None
        portable[index] = (list(zip(violations, record_indexes)), crashes)
    sender.send(("done", portable))
    sender.close()


def _join_child(dataset: Dataset, child: tuple[Any, Any]) -> Results | None:
    process, receiver = child
    try:
        status, payload = receiver.recv()
    except EOFError:
        status, payload = "died", None
    process.join()
    receiver.close()
    if status == "error":
        raise payload  # the child's LorakitError, raised here
    if payload is None:
        return None
    records = dataset.records
    results: Results = {}
    for index, (portable, crashes) in payload.items():
        violations = []
        for violation, record_index in portable:
            if record_index >= 0:
                violation.record = records[record_index]
            violations.append(violation)
        results[index] = (violations, crashes)
    return results


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

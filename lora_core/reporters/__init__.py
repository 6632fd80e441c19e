"""Output formats. Each is a function `render(report, stream)` registered through `register_formats`.

Built-ins: full (rich, default), concise, json, sarif, github, html. The JSON field names are a
public contract, documented in docs/cli.md ("Output formats").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_core.violations import Applicability, Severity, Violation

if TYPE_CHECKING:
    from lora_core.api import FixResult, LintResult


@dataclass
class Report:
    """What a reporter renders: the lint result and how it was produced."""

    result: LintResult
    cwd: Path = field(default_factory=Path.cwd)
    fixed: FixResult | None = None
    unsafe_fixes: bool = False
    statistics: bool = False
    color: bool | None = None  # None: decide from the stream (a terminal gets colour)
    width: int | None = None
    quiet: bool = False  # the violations only: no summary lines (ruff's --quiet)
    show_fixes: bool = False  # the summary lists what --fix fixed, per rule (ruff's --show-fixes)

    _paths: dict[Path, str] = field(default_factory=dict, repr=False)
    _file_paths: dict[int, Path] | None = field(default=None, repr=False)

    def file_of(self, violation: Violation) -> str:
        """`path_of`, except that a finding about a whole folder dataset (LK304 balance, LK204
        coverage) names a file: its config file, else its first caption file. A folder cannot
        carry a GitHub annotation or a SARIF result that a pull request shows."""
        if violation.location is None or not violation.location.path.is_dir():
            return self.path_of(violation)
        if self._file_paths is None:
            self._file_paths = {}
            for item in self.result.datasets:
                sources = sorted(source.path for source in item.dataset.sources)
                stand_in = item.config.path or (sources[0] if sources else None)
                if stand_in is not None:
                    for found in item.violations:
                        self._file_paths[id(found)] = Path(stand_in)
        stand_in = self._file_paths.get(id(violation))
        if stand_in is None:
            return self.path_of(violation)
        from lora_core.api import display_path

        return display_path(stand_in, self.cwd)

    def path_of(self, violation: Violation) -> str:
        """The violation's file relative to cwd (memoised: thousands of violations share a file)."""
        if violation.location is None:
            return ""
        path = violation.location.path
        shown = self._paths.get(path)
        if shown is None:
            from lora_core.api import display_path

            shown = self._paths[path] = display_path(path, self.cwd)
        return shown


def violation_json(violation: Violation, report: Report) -> dict[str, Any]:
    """The JSON object of one violation (fields are a stable public contract)."""
    loc = violation.location
    fix = violation.fix
    return {
        "code": violation.code,
        "name": violation.name,
        "severity": violation.severity.value,
        "message": violation.message,
        "file": report.path_of(violation) or None,
        "line": loc.line if loc else None,
        "column": loc.column if loc else None,
        "end_line": loc.end_line if loc else None,
        "end_column": loc.end_column if loc else None,
        "image": violation.image,
        "fixable": fix is not None,
        "fix": None if fix is None else {"applicability": fix.applicability.value, "message": fix.description},
        "plugin": violation.plugin,
        "score": (violation.data or {}).get("score"),
        "data": violation.data or None,
    }


def fixable_counts(violations: list[Violation]) -> tuple[int, int]:
    """(safe-fixable, unsafe-only-fixable) counts."""
    safe = sum(1 for v in violations if v.fix and v.fix.applicability is Applicability.SAFE)
    unsafe = sum(1 for v in violations if v.fix and v.fix.applicability is Applicability.UNSAFE)
    return safe, unsafe


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural_word or word + 's')}"


def fixed_summary(fixed: Any) -> str:
    """"N problems in M files", and how many edits that took when fewer (one edit can fix two
    problems: two rules asking for the same change)."""
    text = f"{plural(fixed.applied, 'problem')} in {plural(len(fixed.changes), 'file')}"
    edits = getattr(fixed, "edits", fixed.applied)
    if 0 < edits < fixed.applied:
        text += f" ({plural(edits, 'edit')}: some problems were fixed by the same change)"
    return text


def summary_lines(report: Report) -> list[str]:
    """The closing lines of a human report: counts, fixes applied, fixes available."""
    result = report.result
    lines: list[str] = []
    if report.fixed is not None and report.fixed.applied:
        lines.append(f"Fixed {fixed_summary(report.fixed)}" + (":" if report.show_fixes else "."))
        if report.show_fixes:
            lines += fixes_by_rule(report.fixed.by_code, result.rules)
    violations = result.violations
    records = sum(len(d.dataset.records) for d in result.datasets)
    if not violations:
        lines.append(
            f"All checks passed! ({plural(records, 'caption')} in {plural(len(result.datasets), 'dataset')}, "
            f"{plural(len(result.rules), 'rule')})"
        )
    else:
        counts = ", ".join(
            plural(result.count(s), s.value, "info" if s is Severity.INFO else None)
            for s in Severity if result.count(s)
        )
        lines.append(f"Found {plural(len(violations), 'problem')} ({counts}) in "
                     f"{plural(records, 'caption')}.")
        safe, unsafe = fixable_counts(violations)
        if report.unsafe_fixes:
            safe, unsafe = safe + unsafe, 0
        hint = []
        if safe:
            hint.append(f"{safe} fixable with `--fix`")
        if unsafe:
            hint.append(f"{unsafe} more with `--fix --unsafe-fixes`")
        if hint:
            lines.append("[*] " + "; ".join(hint) + ".")
    for crash in result.crashes:
        lines.append(f"error: {crash.describe()}")
    return lines


def fixes_by_rule(by_code: dict[str, int], rules: list[Any]) -> list[str]:
    """`    3 × LK101 (whitespace)` per rule, most first: what a fix run changed (--show-fixes)."""
    names = {rule.code: rule.name for rule in rules}
    ordered = sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0]))
    return [f"  {count:>4} × {code} ({names.get(code, '?')})" for code, count in ordered]


def statistics_rows(violations: list[Violation]) -> list[tuple[int, str, str, str]]:
    """(count, code, name, fixable marker) per rule, most frequent first."""
    counts: dict[str, list[Violation]] = {}
    for v in violations:
        counts.setdefault(v.code, []).append(v)
    rows = [(len(vs), code, vs[0].name, "[*]" if any(v.fix for v in vs) else "") for code, vs in counts.items()]
    return sorted(rows, key=lambda r: (-r[0], r[1]))

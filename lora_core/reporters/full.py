"""`--format full` (the default): grouped by file, each caption shown with the offending span marked.

    examples/cyberpunk/metadata.csv
      4:22  warning  LK101  caption has 2 spaces in a row  [*]
          │ neon city,  rain, cybrpnk
          │          ^^
          = fix: collapse to one space
"""

from __future__ import annotations

import functools
import os
import unicodedata
from itertools import groupby
from typing import TextIO

from rich.cells import cell_len

from lora_core.reporters import Report, statistics_rows, summary_lines
from lora_core.violations import Applicability, Severity, Violation

SNIPPET_WIDTH = 100
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def visible(text: str) -> str:
    """Caption text as shown in a terminal: invisible and control characters become `·`, tabs `→`,
    each keeping one cell so that carets still line up."""
    if text.isprintable():
        return text  # the common case, decided in C
    out = []
    for char in text:
        if char == "\t":
            out.append("→")
        elif char in "\u00a0\u202f\u2007" or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append("·")
        else:
            out.append(char)
    return "".join(out)


def snippet(violation: Violation, width: int = SNIPPET_WIDTH) -> tuple[str, int, int] | None:
    """(visible caption excerpt, caret cell offset, caret width) for the violation's record, the
    excerpt about `width` cells wide."""
    record = violation.record
    if record is None or record.caption is None:
        return None
    caption = record.caption
    start, end = violation.span if violation.span is not None else (0, 0)
    line_start = caption.rfind("\n", 0, start) + 1
    line_end = caption.find("\n", start)
    line_end = len(caption) if line_end == -1 else line_end
    end = min(max(end, start), line_end)
    left = max(line_start, start - width // 2) if line_end - line_start > width else line_start
    right = min(line_end, left + width)
    end = min(end, left + 4 * width)  # a marked span is shown whole unless it is huge
    prefix = "…" if left > line_start else ""
    suffix = "…" if max(right, end) < line_end else ""
    excerpt = caption[left:max(right, end)]  # only the excerpt is tested: a caption may be 1,000,000 characters
    if excerpt.isascii() and excerpt.isprintable():  # the common case: one cell per character
        shown = prefix + excerpt + suffix
        if violation.span is None:
            return shown, 0, 0
        return shown, len(prefix) + start - left, max(1, end - start)
    before = visible(caption[left:start])
    marked = visible(caption[start:end]) if end > start else ""
    shown = prefix + before + marked + visible(caption[end:right]) + suffix
    if violation.span is None:
        return shown, 0, 0
    return shown, _cells(prefix + before), max(1, _cells(marked))


def _cells(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


_SGR = {"bold": "1", "dim": "2", "underline": "4", "red": "31", "green": "32", "yellow": "33", "blue": "34",
        "cyan": "36"}


class _Styler:
    """ANSI styling without a rendering engine: a lint report can hold tens of thousands of
    violations, and rich's per-object rendering costs about 0.3 ms each."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled or not style:
            return text
        codes = ";".join(_SGR[word] for word in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"


def use_color(report: Report, stream: TextIO) -> bool:
    if report.color is not None:
        return report.color
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


MESSAGE_COLUMN = 25  # "  " + position (8) + severity (8) + code (7)


class _Columns:
    """The styled pieces that repeat from violation to violation, each styled once: a big
    report repeats a few codes and severities thousands of times."""

    def __init__(self, style: _Styler, width: int | None = None) -> None:
        self.style = style
        # On a terminal (`width` known): long messages wrap under themselves (a hanging indent) and
        # the caption excerpt fits the line, so its caret row never wraps into a second row of ^.
        self.width = width
        self.snippet_width = SNIPPET_WIDTH if width is None else max(20, min(SNIPPET_WIDTH, width - 9))
        self.severity = {s: style(f"{s.value:<8}", _STYLE[s]) for s in Severity}
        self.code = functools.cache(lambda code: style(f"{code:<7}", "bold"))
        self.name = functools.cache(lambda name: style(f"  {name}", "dim"))
        self.bar = style("      │ ", "blue")
        self.fix = style("      = fix: ", "blue")
        self.safe = style("  [*]", "green")  # as in ruff: [*] marks what plain --fix repairs
        self.unsafe = style(" (unsafe: needs --unsafe-fixes)", "dim")


def render_full(report: Report, stream: TextIO) -> None:
    style = _Styler(use_color(report, stream))
    columns = _Columns(style, report.width)
    violations = report.result.violations
    write = stream.write
    if report.statistics:  # as ruff's --statistics: the counts per rule instead of each violation
        for count, code, name, fixable in statistics_rows(violations):
            write(f"{count:>6}  {code:<7} {fixable:<3} {name}\n")
        if violations:
            write("\n")
    else:
        for path, group in groupby(violations, key=report.path_of):
            write(style(path or "<dataset>", "bold underline") + "\n")
            write("".join(_violation_text(v, columns) for v in group))
            write("\n")
    for line in [] if report.quiet else summary_lines(report):
        tone = "bold red" if line.startswith("error") else ("bold green" if line.startswith("All") else "bold")
        write(style(line, tone) + "\n")


def _hanging(message: str, width: int) -> str:
    """`message` wrapped to `width`, continuation lines indented to where it starts."""
    import textwrap

    return textwrap.fill(message, width=max(40, width), initial_indent=" " * MESSAGE_COLUMN,
                         subsequent_indent=" " * MESSAGE_COLUMN, break_on_hyphens=False)[MESSAGE_COLUMN:]


def _violation_text(violation: Violation, columns: _Columns) -> str:
    style = columns.style
    loc = violation.location
    position = f"{loc.line}:{loc.column}" if loc else ""
    message = violation.message
    if columns.width is not None and MESSAGE_COLUMN + len(message) + len(violation.name) + 7 > columns.width:
        message = _hanging(message + "\x00" * (len(violation.name) + 7), columns.width).rstrip("\x00")
    parts = ["  ", style(f"{position:<8}", "dim"), columns.severity[violation.severity], columns.code(violation.code),
             message]
    fix = violation.fix
    if fix is not None and fix.applicability is Applicability.SAFE:
        parts.append(columns.safe)
    parts.append(columns.name(violation.name))
    shown = snippet(violation, columns.snippet_width)
    if shown is not None:
        line, caret_at, caret_width = shown
        if columns.width is not None:  # the caret stops at the excerpt's end: one row, never wrapped
            caret_width = max(1, min(caret_width, _cells(line) - caret_at)) if caret_at < _cells(line) else 0
        parts += ["\n", columns.bar, line]
        if caret_width:
            parts += ["\n", columns.bar, " " * caret_at, style("^" * caret_width, _STYLE[violation.severity])]
    if fix is not None:
        parts += ["\n", columns.fix, fix.description]
        if fix.applicability is Applicability.UNSAFE:
            parts.append(columns.unsafe)
    parts.append("\n")
    return "".join(parts)

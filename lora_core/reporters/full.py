"""`--format full` (the default): grouped by file, each caption shown with the offending span marked.

    examples/cyberpunk/metadata.csv
      4:22  warning  LK101  caption has 2 spaces in a row  [*]
          │ neon city,  rain, cybrpnk
          │          ^^
          = fix: collapse to one space
"""

from __future__ import annotations

import unicodedata
from itertools import groupby
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from lora_core.reporters import Report, statistics_rows, summary_lines
from lora_core.violations import Severity, Violation

SNIPPET_WIDTH = 100
_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def visible(text: str) -> str:
    """Caption text as shown in a terminal: invisible and control characters become `·`, tabs `→`,
    each keeping one cell so that carets still line up."""
    out = []
    for char in text:
        if char == "\t":
            out.append("→")
        elif char in "\u00a0\u202f\u2007" or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append("·")
        else:
            out.append(char)
    return "".join(out)


def snippet(violation: Violation) -> tuple[str, int, int] | None:
    """(visible caption excerpt, caret cell offset, caret width) for the violation's record."""
    record = violation.record
    if record is None or record.caption is None:
        return None
    caption = record.caption
    start, end = violation.span if violation.span is not None else (0, 0)
    line_start = caption.rfind("\n", 0, start) + 1
    line_end = caption.find("\n", start)
    line_end = len(caption) if line_end == -1 else line_end
    end = min(max(end, start), line_end)
    left = max(line_start, start - SNIPPET_WIDTH // 2) if line_end - line_start > SNIPPET_WIDTH else line_start
    right = min(line_end, left + SNIPPET_WIDTH)
    prefix = "…" if left > line_start else ""
    suffix = "…" if right < line_end else ""
    before = visible(caption[left:start])
    marked = visible(caption[start:end]) if end > start else ""
    shown = prefix + before + marked + visible(caption[end:right]) + suffix
    if violation.span is None:
        return shown, 0, 0
    return shown, cell_len(prefix + before), max(1, cell_len(marked))


def render_full(report: Report, stream: TextIO) -> None:
    console = Console(file=stream, force_terminal=report.color, no_color=report.color is False,
                      width=report.width or 200 if not stream.isatty() else report.width,
                      highlight=False, soft_wrap=True)
    violations = report.result.violations
    for path, group in groupby(violations, key=report.path_of):
        console.print(Text(path or "<dataset>", style="bold underline"))
        for violation in group:
            console.print(_violation_text(violation))
        console.print()
    if report.statistics and violations:
        for count, code, name, fixable in statistics_rows(violations):
            console.print(Text(f"{count:>6}  {code:<7} {fixable:<3} {name}"))
        console.print()
    for line in summary_lines(report):
        style = "bold red" if line.startswith("error") else ("bold green" if line.startswith("All") else "bold")
        console.print(Text(line, style=style))


def _violation_text(violation: Violation) -> Text:
    loc = violation.location
    position = f"{loc.line}:{loc.column}" if loc else ""
    text = Text("  ")
    text.append(f"{position:<8}", style="dim")
    text.append(f"{violation.severity.value:<8}", style=_STYLE[violation.severity])
    text.append(f"{violation.code:<7}", style="bold")
    text.append(violation.message)
    if violation.fix:
        text.append("  [*]", style="green")
    text.append(f"  {violation.name}", style="dim")
    shown = snippet(violation)
    if shown is not None:
        line, caret_at, caret_width = shown
        text.append("\n      │ ", style="blue")
        text.append(line)
        if caret_width:
            text.append("\n      │ " + " " * caret_at, style="blue")
            text.append("^" * caret_width, style=_STYLE[violation.severity])
    if violation.fix:
        text.append("\n      = fix: ", style="blue")
        text.append(violation.fix.description)
        if violation.fix.applicability.value == "unsafe":
            text.append(" (unsafe: needs --unsafe-fixes)", style="dim")
    return text

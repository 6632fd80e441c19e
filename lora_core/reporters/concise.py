"""`--format concise`: one line per violation, `path:line:col: CODE [severity] message`.

The format pre-commit users and editors' problem matchers expect; a summary line closes it.
"""

from __future__ import annotations

from typing import TextIO

from lora_core.reporters import Report, statistics_rows, summary_lines


def concise_line(violation, report: Report) -> str:
    loc = violation.location
    where = f"{report.path_of(violation)}:{loc.line}:{loc.column}" if loc else "<dataset>:1:1"
    return f"{where}: {violation.code} [{violation.severity.value}] {violation.message}"


def render_concise(report: Report, stream: TextIO) -> None:
    write = stream.write
    if report.statistics:  # as ruff's --statistics: the counts per rule instead of each violation
        for count, code, name, fixable in statistics_rows(report.result.violations):
            write(f"{count:>6}  {code:<7} {fixable:<3} {name}\n")
    else:
        for violation in report.result.violations:
            write(concise_line(violation, report) + "\n")
    if not report.quiet:
        for line in summary_lines(report):
            write(line + "\n")

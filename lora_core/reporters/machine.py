"""Machine-readable formats: `json` (an array of violation objects) and `github` annotations."""

from __future__ import annotations

import json
from typing import TextIO

from lora_core.reporters import Report, violation_json
from lora_core.violations import Severity, Violation

_GITHUB_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def render_json(report: Report, stream: TextIO) -> None:
    items = [violation_json(v, report) for v in report.result.violations]
    # A plugin's violation data may hold anything (a Path, a set, an object): it is shown as
    # text rather than losing the whole report.
    json.dump(items, stream, ensure_ascii=False, indent=2, default=_as_text)
    stream.write("\n")


def _as_text(value: object) -> object:
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(violation: Violation, report: Report) -> str:
    loc = violation.location
    props = []
    if loc is not None:
        props.append(f"file={_escape_property(report.file_of(violation))}")
        props.append(f"line={loc.line}")
        # GitHub rejects col/endColumn when the annotation spans several lines.
        if loc.end_line is None or loc.end_line == loc.line:
            props.append(f"col={loc.column}")
            if loc.end_column is not None:
                props.append(f"endColumn={loc.end_column}")
        if loc.end_line is not None:
            props.append(f"endLine={loc.end_line}")
    props.append(f"title={_escape_property(f'lorakit ({violation.code})')}")
    level = _GITHUB_LEVEL[violation.severity]
    return f"::{level} {','.join(props)}::{_escape_data(f'{violation.code} {violation.message}')}"


def render_github(report: Report, stream: TextIO) -> None:
    for violation in report.result.violations:
        stream.write(github_annotation(violation, report) + "\n")

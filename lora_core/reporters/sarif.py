"""`--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Paths are relative to the working directory with `%SRCROOT%` as base, so fingerprints stay stable
across runs; the image a violation concerns goes into `properties.image`.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from lora_core import __version__
from lora_core.reporters import Report
from lora_core.violations import Severity, Violation

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/lorakit/lorakit"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _region(loc: Any) -> dict[str, int]:
    region = {"startLine": loc.line, "startColumn": loc.column}
    if loc.end_line is not None and loc.end_column is not None:
        region["endLine"] = loc.end_line
        region["endColumn"] = loc.end_column
    return region


def _fixes(violation: Violation, uri: str) -> list[dict[str, Any]]:
    fix, record = violation.fix, violation.record
    if fix is None or record is None or not fix.edits or record.caption_span is None:
        return []
    replacements = []
    for edit in fix.edits:
        loc = record.caption_location(edit.start, edit.end)
        replacements.append({"deletedRegion": _region(loc), "insertedContent": {"text": edit.replacement}})
    return [{
        "description": {"text": fix.description},
        "artifactChanges": [{"artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                             "replacements": replacements}],
    }]


def render_sarif(report: Report, stream: TextIO) -> None:
    rules = report.result.rules
    index = {rule.code: i for i, rule in enumerate(rules)}
    descriptors = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.explanation()},
            "help": {"text": rule.explanation(), "markdown": rule.explanation()},
            "helpUri": f"{INFO_URI}/blob/main/docs/rules.md#{rule.code.lower()}",
            "defaultConfiguration": {"level": _LEVEL[rule.severity]},
            "properties": {"plugin": rule.plugin, "fix": rule.fix.value if rule.fix else None},
        }
        for rule in rules
    ]
    results = []
    for violation in report.result.violations:
        item: dict[str, Any] = {
            "ruleId": violation.code,
            "level": _LEVEL[violation.severity],
            "message": {"text": violation.message},
        }
        if violation.code in index:
            item["ruleIndex"] = index[violation.code]
        loc = violation.location
        if loc is not None:
            uri = report.file_of(violation).replace("\\", "/")
            item["locations"] = [{
                "physicalLocation": {
                    "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                    "region": _region(loc),
                }
            }]
            fixes = _fixes(violation, uri)
            if fixes:
                item["fixes"] = fixes
        if violation.image is not None:
            item["properties"] = {"image": violation.image}
        results.append(item)
    notifications = [
        {"level": "error", "message": {"text": crash.describe()},
         "associatedRule": {"id": crash.code}}
        for crash in report.result.crashes
    ]
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "lorakit", "version": __version__, "informationUri": INFO_URI,
                                "rules": descriptors}},
            "invocations": [{"executionSuccessful": not report.result.crashes,
                             "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    }
    json.dump(log, stream, ensure_ascii=False, indent=2)
    stream.write("\n")

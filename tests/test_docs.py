"""docs/rules.md and docs/configuration.md are generated from code and must not be stale."""

from __future__ import annotations

from lora_core import docgen
from lora_core.plugins import load_plugins


def test_generated_docs_are_current():
    for path, text in docgen.generated().items():
        assert path.exists(), f"{path} missing: run `python -m lora_core.docgen`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `python -m lora_core.docgen`"


def test_every_builtin_rule_documents_what_why_example_fix():
    registry = load_plugins(builtin_only=True)
    for rule in registry.rules.values():
        doc = rule.explanation()
        for section in ("## What it does", "## Why it matters", "## Example", "## Fix", "## Options"):
            assert section in doc, f"{rule.code} lacks {section}"
        assert rule.summary and not rule.summary.endswith(".")

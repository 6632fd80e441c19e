"""Shaping machine captions with the lint config's own fixes, so auto-captions start out conforming."""

from __future__ import annotations

from pathlib import Path

from lora_core.config import Config
from lora_core.datasets.model import Dataset, Record, SourceFile
from lora_core.engine import Selection, run_rules
from lora_core.fixer import fix_dataset
from lora_core.plugins import Registry
from lora_core.violations import Violation


def postprocess(captions: list[str], config: Config, registry: Registry, unsafe: bool = True) -> list[str]:
    """Apply the config's fixes to fresh captions (in memory, no file involved): the fixes of every
    rule that opts in with `postprocess_captions = True`, built-in or a plugin's, unsafe ones too
    unless `unsafe` is False (captions people wrote: their wording is theirs)."""
    rules = [rule for _, rule in sorted(registry.rules.items()) if rule.postprocess_captions]
    if not rules or not captions:
        return captions
    source = SourceFile(path=Path("<captions>"), text="")
    records = [Record(i, f"#{i}", c, source, original_caption=c) for i, c in enumerate(captions)]
    dataset = Dataset(root=Path("."), path=Path("<captions>"), format="memory", records=records, sources=[source])
    selection = Selection(select=[rule.code for rule in rules])

    def run() -> list[Violation]:
        return run_rules(dataset, rules, selection, config, jobs=1)[0]

    fix_dataset(dataset, run, unsafe=unsafe)
    return [r.caption or "" for r in records]

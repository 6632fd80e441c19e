"""Example lorakit rule pack: EX101 artifact-tag."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from lora_core import Applicability, Fix, LintContext, Rule, RuleOption, Severity, hookimpl
from lora_core.datasets import Record
from lora_core.violations import Violation

ARTIFACT_TAGS = ("watermark", "signature", "jpeg artifacts", "artist name", "logo", "username", "text")
_TAG = re.compile(r"(?:^|(?<=,))\s*(" + "|".join(re.escape(t) for t in ARTIFACT_TAGS) + r")\s*(?=,|$)", re.I)


class ArtifactTag(Rule):
    """## What it does
    Reports tags that describe image artifacts rather than content: `watermark`, `signature`,
    `jpeg artifacts`, `logo`, `text`, `username`, `artist name`.

    ## Why it matters
    Whatever a caption names, the LoRA learns to produce when prompted with it, and learns to
    associate with the trigger otherwise. Tagging the watermark teaches the watermark.

    ## Example
    ```text
    cybrpnk, neon city, rain, watermark
    ```

    ## Fix
    Crop or clean the image, then remove the tag (unsafe fix: it changes the caption's meaning).
    """

    code = "EX101"
    name = "artifact-tag"
    summary = "A tag names an image artifact (watermark, signature, jpeg artifacts)"
    severity = Severity.WARNING
    fix = Applicability.UNSAFE
    options = (RuleOption("lint.select", "select `EX` to run only this pack"),)

    def check_record(self, record: Record, ctx: LintContext) -> Iterable[Violation]:
        caption = record.caption or ""
        for m in _TAG.finditer(caption):
            start, end = m.span(1)
            # Remove the tag and the separator before it (or after it, for the first tag).
            cut_start = caption.rfind(",", 0, start)
            cut = (cut_start, end) if cut_start >= 0 else (start, min(len(caption), caption.find(",", end) + 1 or end))
            fix = Fix.replace(f"remove `{m.group(1)}`", *cut, "", Applicability.UNSAFE)
            yield self.at_caption(record, f"artifact tag `{m.group(1)}` teaches the artifact", (start, end), fix)


@hookimpl
def register_rules(register: Callable[[type], None]) -> None:
    register(ArtifactTag)

"""LK4xx: template conformance. Captions that follow one template
(`{style} {subject} with {features}, {lighting}, {background}`) give the text encoder a
consistent structure, so each part of the image is bound to the same kind of words everywhere.
These rules read the `[template]` section.
"""

from __future__ import annotations

from collections.abc import Iterable

from lora_core import RuleOption, Severity
from lora_core.config import ConfigKey, ConfigSection, ListOf, MapOf, Str
from lora_core.datasets.model import Dataset
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.template import Template
from lora_core.violations import Violation


def _check_pattern(value: str) -> None:
    if value:
        Template.parse(value)


TEMPLATE_SECTION = ConfigSection(
    "template",
    "The caption template (LK4xx).",
    [
        ConfigKey("pattern", Str(), "",
                  'Literal text with {slot} placeholders, e.g. "{style} {subject} with {features}, {lighting}".',
                  validate=_check_pattern),
        ConfigKey("slots", MapOf(ListOf(Str())), {}, "Optional vocabulary per slot: slot -> allowed values."),
        ConfigKey("questions", MapOf(Str()), {},
                  "`lorakit caption --template`: slot -> the question a captioner answers to fill it "
                  '(default "Question: what is the {slot} in this picture? Answer:", multiple choice '
                  "when the slot has a vocabulary)."),
    ],
)


def _template(ctx: LintContext) -> Template | None:
    pattern = ctx.section("template").get("pattern", "")
    return Template.parse(pattern) if pattern else None


class TemplateMismatch(Rule):
    """## What it does
    Reports a caption that does not follow `template.pattern`, saying which slot or literal is
    missing. Literals match ignoring case; spaces and `, ` match any run of blanks.

    ## Why it matters
    A consistent structure binds each part of the image (style, subject, features, lighting,
    background) to the same kind of words in every caption; free-form captions let those
    concepts drift into each other, and the prompt structure you use later stops matching.

    ## Example
    With `pattern = "{style} {subject} with {features}, {lighting}, {background}"`:
    ```text
    cyberpunk street vendor, neon light, night market    # missing ` with ` after {subject}
    ```

    ## Fix
    Rewrite the caption to the template (`lorakit caption --template` can fill it).
    """

    code = "LK401"
    name = "template-mismatch"
    summary = "Caption does not follow template.pattern"
    severity = Severity.ERROR
    options = (RuleOption("template.pattern", "the template"),)
    cost = 6

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        template = _template(ctx)
        if template is None:
            return
        for record in ctx.captioned:
            caption = record.caption or ""
            if caption.strip() and not template.follows(caption):
                yield self.at_caption(record, f"caption does not follow the template: {template.explain(caption)}")


class SlotVocabulary(Rule):
    """## What it does
    Reports a template slot whose value is not one of the values listed for it in
    `[template.slots]` (compared ignoring case).

    ## Why it matters
    A slot vocabulary is a whitelist: `{style}` = "cyberpunk" or "watercolor", never "cool
    futuristic". Off-list values split one concept into many spellings.

    ## Example
    With `slots = { style = ["cyberpunk", "watercolor"] }`:
    ```text
    steampunk street vendor with goggles, gas light, alley
    ```

    ## Fix
    Use one of the listed values, or add the value to the list if it is a real new category.
    """

    code = "LK402"
    name = "slot-vocabulary"
    summary = "A slot value outside template.slots"
    severity = Severity.WARNING
    options = (RuleOption("template.slots", "slot -> allowed values"),)
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        template = _template(ctx)
        vocab = {k: {v.casefold() for v in vs} for k, vs in ctx.section("template").get("slots", {}).items()}
        if template is None or not vocab:
            return
        slots = [p.text for p in template.pieces if p.is_slot and p.text in vocab]
        listed = ctx.section("template").get("slots", {})
        for record in ctx.captioned:
            match = template.match(record.caption or "")
            if match is None:
                continue  # LK401
            for slot in slots:
                value, (start, end) = template.slot_value(match, slot)
                if value.casefold() not in vocab[slot]:
                    allowed = ", ".join(listed[slot])
                    yield self.at_caption(record, f"{{{slot}}} is `{value}`, not one of: {allowed}", (start, end))


RULES = (TemplateMismatch, SlotVocabulary)

plugin = RulePack(RULES, config=[TEMPLATE_SECTION])

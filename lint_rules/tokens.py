"""LK5xx: what the text encoder actually sees. CLIP reads 77 tokens (75 of content) and trainers
cut the rest silently; a trigger that splits into several tokens, or that is a common word, binds
the concept weakly. Counts are exact (lora_core.toolkit.clip_tokens); these rules read `[tokens]`.
"""

from __future__ import annotations

from collections.abc import Iterable

from lora_core import RuleOption, Severity
from lora_core.config import ConfigKey, ConfigSection, Int, Str, key_location
from lora_core.datasets.model import Dataset
from lora_core.errors import ConfigError
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.clip_tokens import COMMON_WORD_ID, ClipTokenizer, TokenizerUnavailable, load_tokenizer
from lora_core.violations import Violation

TOKENS_SECTION = ConfigSection(
    "tokens",
    "CLIP token limits (LK5xx).",
    [
        ConfigKey("max", Int(1), 75, "Content tokens allowed (75 = 77 with start/end; 150/225 for extended windows)."),
        ConfigKey("tokenizer", Str(), "clip",
                  '"clip", or a tokenizer folder / base model folder (relative to the config file).'),
    ],
)



def tokenizer_for(ctx: LintContext) -> ClipTokenizer:
    relative_to = ctx.config_path.parent if ctx.config_path is not None else None
    base_model = ctx.section("train").get("base-model", "") if ctx.has_section("train") else ""
    source = ctx.section("tokens").get("tokenizer", "clip")
    try:
        return load_tokenizer(source, base_model, relative_to)
    except TokenizerUnavailable as exc:
        if source != "clip":  # a path the user configured is wrong: a config error, not a skipped check
            why = str(exc) if "[tokens]" in str(exc) else f"[tokens] tokenizer: {exc}"
            raise ConfigError(f"{ctx.config_path or 'configuration'}: {why}") from None
        raise


class ClipTokenOverflow(Rule):
    """## What it does
    Reports a caption longer than `tokens.max` CLIP tokens (75 by default), quoting the text
    that the text encoder never sees. Counts are exact: the same BPE and ids as the real
    tokenizer, not a word-count estimate.

    ## Why it matters
    SD 1.x and SDXL encode 77 tokens; kohya, diffusers and most trainers truncate longer captions
    without a word. Whatever sits past the limit, often the style or the background description,
    is simply not trained.

    ## Example
    A 90-token BLIP-2 paragraph: the last 15 tokens ("... in the style of cyberpunk art") are cut.

    ## Fix
    Shorten the caption, move the important words to the front, or raise `tokens.max` if your
    trainer uses extended token windows (150 or 225).
    """

    code = "LK501"
    name = "clip-token-overflow"
    summary = "Caption longer than tokens.max CLIP tokens"
    severity = Severity.ERROR
    shares = "clip-tokenizer"
    options = (RuleOption("tokens.max", "content tokens allowed"),
               RuleOption("tokens.tokenizer", "where the vocabulary comes from"))
    cost = 8

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        limit = ctx.section("tokens").get("max", 75)
        try:
            tokenizer = tokenizer_for(ctx)
        except TokenizerUnavailable as exc:
            where = key_location(ctx.config_path, "tokens", "tokenizer") or dataset.location
            notice = self.at(where, f"CLIP token counts skipped: no CLIP vocabulary found ({exc})", skipped=True)
            notice.severity = Severity.INFO  # a missing optional dependency is not a caption error
            yield notice
            return
        corpus = ctx.corpus
        # An ASCII character is at most one token: shorter ASCII captions cannot overflow.
        maybe = [i for i, c in enumerate(corpus.captions) if len(c) > limit or not c.isascii()]
        counts = tokenizer.counts([corpus.captions[i] for i in maybe])
        for i, tokens in zip(maybe, counts):
            if tokens <= limit:
                continue
            record, caption = corpus.records[i], corpus.captions[i]
            cut = tokenizer.cut_offset(caption, limit)
            start = cut if cut is not None else 0
            lost = caption[start:].strip()
            shown = lost if len(lost) <= 70 else f"{lost[:40]} ... {lost[-25:]}"
            yield self.at_caption(record, f"caption is {tokens} CLIP tokens (max {limit}); cut off: `{shown}`",
                                  (start, len(caption)), tokens=tokens)


class TriggerTokenSplit(Rule):
    """## What it does
    Reports (once) when `entities.trigger` splits into several CLIP tokens, or is a single token
    that is a common word.

    ## Why it matters
    A trigger that is a common word ("city", "neon") already means something to the model: the
    LoRA fights that meaning, and every prompt using the word picks up the LoRA. One that splits
    into many pieces spends tokens and binds the concept to fragments shared with other words.
    A rare word of one or two tokens binds best.

    ## Example
    `trigger = "cybrpnk"` is 4 tokens: cy|br|pn|k.

    ## Fix
    Choose a rare token that CLIP encodes in one or two pieces (check with `lorakit rule LK502`'s
    message after changing it).
    """

    code = "LK502"
    name = "trigger-token-split"
    summary = "The trigger splits into several CLIP tokens or is a common word"
    severity = Severity.INFO
    shares = "clip-tokenizer"
    options = (RuleOption("entities.trigger", "the trigger token"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        trigger = ctx.section("entities").get("trigger", "")
        if not trigger:
            return
        try:
            tokenizer = tokenizer_for(ctx)
        except TokenizerUnavailable:
            return  # LK501 already says why
        ids = tokenizer.encode(trigger)
        where = key_location(ctx.config_path, "entities", "trigger") or dataset.location
        if len(ids) > 1:
            pieces = "|".join(tokenizer.pieces(trigger))
            yield self.at(where, f"trigger `{trigger}` is {len(ids)} CLIP tokens ({pieces})", tokens=len(ids))
        elif ids and ids[0] < COMMON_WORD_ID and " " not in trigger:
            yield self.at(where, f"trigger `{trigger}` is a common word to CLIP (token {ids[0]}): its existing "
                          "meaning competes with the concept", token=ids[0])


RULES = (ClipTokenOverflow, TriggerTokenSplit)

plugin = RulePack(RULES, config=[TOKENS_SECTION])

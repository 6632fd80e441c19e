"""LK5xx: what the text encoder actually sees. CLIP reads 77 tokens (75 of content) and trainers
cut the rest silently; a trigger that splits into several tokens, or that is a common word, binds
the concept weakly. Counts are exact (lora_core.toolkit.clip_tokens); these rules read `[tokens]`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from lora_core import RuleOption, Severity
from lora_core.config import ConfigKey, ConfigSection, Int, Str, key_location
from lora_core.datasets.model import Dataset
from lora_core.errors import ConfigError
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.clip_tokens import COMMON_WORD_ID, ClipTokenizer, TokenizerUnavailable, load_tokenizer
from lora_core.toolkit.forms import caption_forms
from lora_core.toolkit.models import TargetModel, model_named
from lora_core.violations import Violation

TOKENS_SECTION = ConfigSection(
    "tokens",
    "CLIP token limits (LK5xx).",
    [
        ConfigKey("max", Int(1), 75,
                  "CLIP content tokens allowed (75 = 77 with start/end; 150/225 for kohya's max_token_length). "
                  "When not set, the budget of [dataset] model."),
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


def target_model(ctx: LintContext) -> TargetModel | None:
    """The model the dataset trains (`[dataset] model`, set in lorakit.toml or read from the
    trainer config), with `[tokens] max` applied to a CLIP model (kohya's max_token_length)."""
    model = model_named(str(ctx.section("dataset").get("model", "") or ""))
    if model is not None and ctx.has_key("tokens", "max"):
        model = model.with_token_length(int(ctx.section("tokens").get("max", 75)))
    return model


#: A long-encoder budget is checked with CLIP's count, which runs a little above T5's and
#: Gemma's on English prose: only a caption this much over the budget is reported.
_OTHER_TOKENIZER_MARGIN = 1.15


class ClipTokenOverflow(Rule):
    """## What it does
    Reports a caption longer than the target model's text encoder reads, quoting the text that
    is never trained. The budget comes from the model (`[dataset] model`, or the trainer config
    lorakit reads it from: kohya `sdxl`/`v2`/`max_token_length`, ai-toolkit `model.arch`,
    OneTrainer `model_type`, SimpleTuner `model_family`):

    | model | what reads the caption | budget |
    |---|---|---|
    | SD 1.x, SD 2.x, SDXL, Pony, Illustrious | CLIP | 75 tokens (kohya `max_token_length` 150/225) |
    | SD 3 / 3.5 | T5-XXL | 256 |
    | FLUX.1 dev, Krea, Chroma | T5-XXL | 512 |
    | other T5 / LLM encoders | T5, Gemma, Qwen | 256-512 |

    CLIP counts are exact (the real BPE and ids); a T5 or LLM budget is checked with CLIP's count
    and a 15% margin. `[tokens] max` set explicitly is a CLIP budget and wins.

    With the model unknown, the captions decide what can be said:
    - most captions fit 75 CLIP tokens and a few do not: those few are reported (warning,
      assuming a CLIP model, as the rest of the set suggests);
    - tag captions (booru / WD14 tags, native to the CLIP models) over 75: reported per caption
      (warning, assuming SD 1.x/SDXL);
    - most prose captions over 75: one dataset-level finding (info) that says what that means per
      model family and how to pin the model, instead of an error on every caption.

    ## Why it matters
    SD 1.x and SDXL encode 75 tokens per chunk; kohya, diffusers and most trainers truncate longer
    captions without a word. Whatever sits past the limit, often the style or the background
    description, is simply not trained. The same 150-word caption is right for FLUX.

    ## Example
    A 90-token BLIP-2 paragraph for SDXL: the last 15 tokens ("... in the style of cyberpunk art")
    are cut.

    ## Fix
    Shorten the caption or move the important words to the front; pin the model
    (`[dataset] model = "flux"`) if it reads long captions; set `[tokens] max = 225` if your
    kohya run uses `--max_token_length 225`.
    """

    code = "LK501"
    name = "clip-token-overflow"
    summary = "Caption longer than the target model's text encoder reads ([dataset] model, tokens.max)"
    severity = Severity.ERROR
    shares = "clip-tokenizer"
    options = (RuleOption("dataset.model", "the model the dataset trains"),
               RuleOption("tokens.max", "CLIP content tokens allowed (explicit: wins over the model)"),
               RuleOption("tokens.tokenizer", "where the vocabulary comes from"))
    cost = 8

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        try:
            tokenizer = tokenizer_for(ctx)
        except TokenizerUnavailable as exc:
            where = key_location(ctx.config_path, "tokens", "tokenizer") or dataset.location
            notice = self.at(where, f"CLIP token counts skipped: no CLIP vocabulary found ({exc})", skipped=True)
            notice.severity = Severity.INFO  # a missing optional dependency is not a caption error
            yield notice
            return
        model = target_model(ctx)
        explicit = ctx.has_key("tokens", "max")
        if model is not None and not model.clip_only and not explicit:
            yield from self._long_encoder(ctx, tokenizer, model)
            return
        limit = model.budget if model is not None else int(ctx.section("tokens").get("max", 75))
        corpus = ctx.corpus
        over = tokenizer.over(ctx.corpus.captions, limit)
        if model is not None or explicit:
            why = f"{model.name}: {model.budget_text}" if model is not None else f"[tokens] max = {limit}"
            for index, tokens in over:
                yield self._row(ctx, tokenizer, index, tokens, limit, why, Severity.ERROR)
            return
        # The model is unknown: what the captions themselves say decides.
        captions = [c for c in corpus.captions if c.strip()]
        if not over or not captions:
            return
        forms = Counter(f for f in caption_forms([corpus.captions[i] for i, _ in over]) if f)
        tagged = forms.get("tags", 0) > (forms.get("prose", 0) + forms.get("phrases", 0))
        share = len(over) / len(captions)
        if tagged:
            why = ("model unknown; tag captions, native to SD 1.x / SDXL (CLIP, 75 tokens per chunk), "
                   "assumed: pin it with [dataset] model, or [tokens] max = 225 for kohya --max_token_length 225")
        elif share < 0.5:
            why = (f"model unknown; {len(captions) - len(over)} of {len(captions)} captions fit 75 CLIP tokens, "
                   "so a CLIP model (SD 1.x / SDXL) is assumed: pin it with [dataset] model")
        else:
            yield self._set_wide(ctx, over, len(captions))
            return
        for index, tokens in over:
            yield self._row(ctx, tokenizer, index, tokens, limit, why, Severity.WARNING)

    def _row(self, ctx: LintContext, tokenizer: ClipTokenizer, index: int, tokens: int, limit: int, why: str,
             severity: Severity) -> Violation:
        record, caption = ctx.corpus.records[index], ctx.corpus.captions[index]
        start, shown = _cut_off(tokenizer, caption, limit)
        violation = self.at_caption(record, f"caption is {tokens} CLIP tokens (max {limit}); cut off: `{shown}` "
                                    f"({why})", (start, len(caption)), tokens=tokens, limit=limit)
        violation.severity = severity
        return violation

    def _set_wide(self, ctx: LintContext, over: list[tuple[int, int]], total: int) -> Violation:
        counts = sorted(n for _, n in over)
        median = counts[len(counts) // 2]
        where = key_location(ctx.config_path, "dataset", "model") or ctx.dataset.location
        example = ctx.corpus.records[over[0][0]].image
        violation = self.at(
            where, f"{len(over)} of {total} captions are longer than 75 CLIP tokens (median {median}, longest "
            f"{counts[-1]}; e.g. `{example}`), and the model is not known: for SD 1.x / SDXL / Pony / Illustrious "
            "(CLIP, 75 tokens per chunk; kohya --max_token_length 225 at most) their tails are not trained; "
            "FLUX (T5, 512 tokens), SD 3 (T5, 256) and LLM-encoder models read them whole. Pin the model with "
            '[dataset] model = "flux" (or "sdxl", "sd1", ...) to check each caption against its real budget',
            captions=len(over), total=total, median=median, set_wide=True)
        violation.severity = Severity.INFO
        return violation

    def _long_encoder(self, ctx: LintContext, tokenizer: ClipTokenizer, model: TargetModel) -> Iterable[Violation]:
        limit = int(model.budget * _OTHER_TOKENIZER_MARGIN)
        for index, tokens in tokenizer.over(ctx.corpus.captions, limit):
            record, caption = ctx.corpus.records[index], ctx.corpus.captions[index]
            start, shown = _cut_off(tokenizer, caption, model.budget)
            violation = self.at_caption(
                record, f"caption is about {tokens} tokens (counted with CLIP's tokenizer); {model.name} reads "
                f"{model.budget_text} ([dataset] model): `{shown}` is not trained", (start, len(caption)),
                tokens=tokens, limit=model.budget)
            violation.severity = Severity.WARNING  # an estimate in another tokenizer's units
            yield violation


def _cut_off(tokenizer: ClipTokenizer, caption: str, limit: int) -> tuple[int, str]:
    """Where the text past `limit` tokens starts, and that text as a message shows it."""
    cut = tokenizer.cut_offset(caption, limit)
    start = cut if cut is not None else 0
    lost = caption[start:].strip()
    return start, lost if len(lost) <= 70 else f"{lost[:40]} ... {lost[-25:]}"


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

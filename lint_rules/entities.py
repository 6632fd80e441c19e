"""LK3xx: who and what the captions name: identity tokens for people, and the trigger word.

Two people captioned "portrait" bleed into each other; the fix is one bound identity token per
person (`person_A`) and balanced counts. The trigger is the token the LoRA is trained to respond
to; it must be in every caption, spelled exactly, and kept in front when tags are shuffled.
These rules read the `[entities]` section.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from lora_core import Fix, RuleOption, Severity
from lora_core.captions import SEPARATORS, after_prefix, tag_spans
from lora_core.config import ConfigKey, ConfigSection, Float, Int, ListOf, Str
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.terms import Terms
from lora_core.violations import Applicability, Violation

DEFAULT_PERSON_TERMS = ["portrait", "woman", "man", "girl", "boy", "person", "face", "lady", "guy",
                        "people", "child", "selfie"]


def _check_pattern(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None


ENTITIES_SECTION = ConfigSection(
    "entities",
    "Identity tokens and the trigger word (LK3xx).",
    [
        ConfigKey("trigger", Str(), "", "The token the LoRA is trained to respond to, e.g. `cybrpnk`."),
        ConfigKey("keep-tokens", Int(0), 1, "The trigger must sit within the first N tags (kohya keep_tokens)."),
        ConfigKey("identities", ListOf(Str()), [], "Declared identity tokens, e.g. [\"person_A\", \"person_B\"]."),
        ConfigKey("identity-pattern", Str(), r"person_[A-Za-z]\w*", "What an identity token looks like (regex).",
                  validate=_check_pattern),
        ConfigKey("person-terms", ListOf(Str()), DEFAULT_PERSON_TERMS,
                  "Words that show a person is depicted (need an identity token when identities are declared)."),
        ConfigKey("max-identity-share", Float(0.0, 1.0), 0.6,
                  "No identity may appear in more than this share of the captions that name an identity."),
    ],
)


def _entities(ctx: LintContext) -> dict:
    return ctx.section("entities")


def _identities(ctx: LintContext) -> Terms:
    return Terms(_entities(ctx).get("identities", []), case_sensitive=True)


class UnboundPerson(Rule):
    """## What it does
    When `entities.identities` is declared: reports a person word (`portrait`, `woman`, ...) in a
    caption that names no declared identity token.

    ## Why it matters
    With two or more people in a dataset, "portrait of a woman" binds both faces to the same words
    and the LoRA blends them. Each person needs their own token in every caption that shows them.

    ## Example
    With `identities = ["person_A", "person_B"]`:
    ```text
    portrait, woman, red jacket, studio light
    ```

    ## Fix
    Add the identity token: `portrait of person_A, front view, clear face`.
    """

    code = "LK301"
    name = "unbound-person"
    summary = "A person term appears without a declared identity token"
    severity = Severity.ERROR
    options = (RuleOption("entities.identities", "declared identity tokens"),
               RuleOption("entities.person-terms", "words that show a person"))
    cost = 6

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        identities = _identities(ctx)
        persons = Terms(_entities(ctx).get("person-terms", DEFAULT_PERSON_TERMS))
        if not identities or not persons:
            return
        flagged: set[int] = set()
        for record, start, end, match in ctx.corpus.term_matches(persons):
            if id(record) in flagged or identities.search(record.caption or ""):
                continue
            flagged.add(id(record))
            names = " / ".join(identities.terms)
            yield self.at_caption(record, f"`{match.group()}` without an identity token ({names})", (start, end))


class UnknownIdentity(Rule):
    """## What it does
    Reports a token that looks like an identity (`entities.identity-pattern`, matched ignoring
    case) but is not declared in `entities.identities`: usually a typo such as `person_a` for
    `person_A`.

    ## Why it matters
    `person_a` is a different token from `person_A`: the images captioned with the typo train a
    third, unnamed identity and weaken the real one.

    ## Example
    With `identities = ["person_A"]`:
    ```text
    portrait of person_a, smiling
    ```

    ## Fix
    Unsafe fix when the token differs from a declared one only in letter case: use the declared
    spelling. Otherwise declare the identity or correct the token.
    """

    code = "LK302"
    name = "unknown-identity"
    summary = "An identity-like token that is not declared (typo such as person_a vs person_A)"
    severity = Severity.WARNING
    fix = Applicability.UNSAFE
    options = (RuleOption("entities.identity-pattern", "what an identity token looks like"),
               RuleOption("entities.identities", "declared identity tokens"))
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        settings = _entities(ctx)
        declared = settings.get("identities", [])
        if not declared:
            return
        source = settings.get("identity-pattern", r"person_[A-Za-z]\w*")
        pattern = re.compile(r"(?<!\w)(?:" + source + r")(?!\w)", re.IGNORECASE)
        by_fold: dict[str, list[str]] = {}
        for name in declared:
            by_fold.setdefault(name.casefold(), []).append(name)
        for record, start, end, match in _pattern_matches(ctx, pattern, source):
            token = match.group()
            if token in declared:
                continue
            same = by_fold.get(token.casefold(), [])
            fix = None
            if len(same) == 1:
                fix = Fix.replace(f"use `{same[0]}`", start, end, same[0], Applicability.UNSAFE)
                message = f"unknown identity `{token}` (did you mean `{same[0]}`? tokens are case-sensitive)"
            else:
                message = f"unknown identity `{token}`; declared: {', '.join(declared)}"
            yield self.at_caption(record, message, (start, end), fix)


def _pattern_matches(ctx: LintContext, pattern: re.Pattern[str], source: str):
    """Matches of a user regex; when it starts with a literal word prefix (`person_`), only the
    captions holding a word with that prefix are searched."""
    prefix = re.match(r"[A-Za-z0-9_]+", source)
    if prefix is None or any(c in source[: prefix.end() + 1] for c in "?*{|"):
        yield from ctx.corpus.matches(pattern)
        return
    corpus = ctx.corpus
    for i in corpus.with_substring(prefix.group()):
        for m in pattern.finditer(corpus.captions[i]):
            yield corpus.records[i], m.start(), m.end(), m


class MultipleIdentities(Rule):
    """## What it does
    Reports a caption that names more than one declared identity.

    ## Why it matters
    Images with two identities teach the model that the two tokens co-occur; with few such
    images, the identities start to leak into each other. Keep them rare, and deliberate.

    ## Example
    ```text
    person_A and person_B at a cafe
    ```

    ## Fix
    Crop to one person per image where you can; keep group shots a small minority.
    """

    code = "LK303"
    name = "multiple-identities"
    summary = "More than one identity in a caption"
    severity = Severity.WARNING
    options = (RuleOption("entities.identities", "declared identity tokens"),)
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        identities = _identities(ctx)
        if not identities:
            return
        for record, names in identity_mentions(ctx, identities).items():
            if len(names) > 1:
                yield self.at_caption(record, f"caption names {len(names)} identities: {', '.join(sorted(names))}")


def identity_mentions(ctx: LintContext, identities: Terms) -> dict[Record, set[str]]:
    found: dict[Record, set[str]] = {}
    for record, _, _, match in ctx.corpus.term_matches(identities):
        found.setdefault(record, set()).add(match.group())
    return found


class IdentityImbalance(Rule):
    """## What it does
    Dataset level: reports an identity that appears in more than `entities.max-identity-share`
    of the captions that name any identity.

    ## Why it matters
    The dominant identity becomes the model's default face: prompts for the minority identity
    drift towards it.

    ## Example
    person_A in 80 captions, person_B in 20: person_A has 80% with a limit of 60%.

    ## Fix
    Add images of the other identities or remove some of the dominant one.
    """

    code = "LK304"
    name = "identity-imbalance"
    summary = "One identity dominates the identity captions"
    severity = Severity.WARNING
    options = (RuleOption("entities.max-identity-share", "the largest share one identity may have"),)
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        identities = _identities(ctx)
        if len(identities.terms) < 2:
            return
        mentions = identity_mentions(ctx, identities)
        if not mentions:
            return
        counts = Counter(name for names in mentions.values() for name in names)
        limit = _entities(ctx).get("max-identity-share", 0.6)
        total = len(mentions)
        where = dataset.location
        summary = ", ".join(f"{name} {counts.get(name, 0)}" for name in identities.terms)
        for name, count in counts.most_common():
            share = count / total
            if share > limit + 1e-12:
                yield self.at(where, f"`{name}` is in {share:.0%} of the {total} identity captions "
                              f"(limit {limit:.0%}): {summary}", share=round(share, 4), count=count, total=total)


class TriggerMissing(Rule):
    """## What it does
    Reports a caption without the trigger (`entities.trigger`), matched exactly: letter case
    counts, and a zero-width character or odd space inside the word means it is *not* there (the
    message says when that is the case).

    ## Why it matters
    The trigger is what you will type at generation time. Captions without it teach the concept
    unconditionally (it leaks into every prompt); `Cybrpnk` or `cybr\\u200dpnk` are different
    tokens to CLIP, so those images do not train the trigger either.

    ## Example
    With `trigger = "cybrpnk"`:
    ```text
    neon city, rain, night
    cybr<U+200D>pnk, neon city
    ```

    ## Fix
    Unsafe fix: insert the trigger at the front (LK105 removes invisible characters; check that
    the image belongs to the concept, e.g. not a regularisation image).
    """

    code = "LK305"
    name = "trigger-missing"
    summary = "The trigger token is absent (exact match)"
    severity = Severity.ERROR
    fix = Applicability.UNSAFE
    options = (RuleOption("entities.trigger", "the trigger token"),)
    cost = 5

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        trigger = _entities(ctx).get("trigger", "")
        if not trigger:
            return
        terms = Terms([trigger], case_sensitive=True)
        corpus = ctx.corpus
        lacking = set(range(len(corpus.records))).difference(corpus.having(terms))
        for index in sorted(lacking):
            record = corpus.records[index]
            caption = record.caption or ""
            if not caption.strip():
                continue
            why = terms.near_miss(caption)
            message = f"trigger `{trigger}` is missing" + (f": {why}" if why else "")
            at = after_prefix(caption)  # after a `[style: ...]` prefix: together they are the first tag
            fix = None if why else Fix.replace(f"insert `{trigger}` at the front", at, at, trigger + ", ",
                                                Applicability.UNSAFE)
            yield self.at_caption(record, message, fix=fix)


class TriggerPosition(Rule):
    """## What it does
    Reports a trigger that is not within the first `entities.keep-tokens` tags.

    ## Why it matters
    kohya sd-scripts' `--shuffle_caption` shuffles every tag except the first `keep_tokens`; a
    trigger outside them moves around and loses its fixed binding to the concept.

    ## Example
    With `trigger = "cybrpnk"`, `keep-tokens = 1`:
    ```text
    neon city, rain, cybrpnk
    ```

    ## Fix
    Safe fix: the trigger tag is moved to the front.
    """

    code = "LK306"
    name = "trigger-position"
    summary = "Trigger not within the first keep-tokens tags"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    options = (RuleOption("entities.trigger", "the trigger token"),
               RuleOption("entities.keep-tokens", "how many leading tags stay in place"))
    cost = 6

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        settings = _entities(ctx)
        trigger, keep = settings.get("trigger", ""), settings.get("keep-tokens", 1)
        if not trigger or keep < 1:
            return
        corpus = ctx.corpus
        seen: set[int] = set()
        for record, start, end, _ in _late_triggers(corpus, Terms([trigger], case_sensitive=True), trigger, keep):
            if id(record) in seen:
                continue
            seen.add(id(record))
            caption = record.caption or ""
            spans = tag_spans(caption)
            position = next((i for i, (a, b) in enumerate(spans) if a <= start < b), 0)
            if position < keep:
                continue
            tag_start, tag_end = spans[position]
            before = spans[position - 1][1]  # cut from the end of the previous tag: ", trigger"
            rest = caption[:before] + caption[tag_end:]
            moved = caption[tag_start:tag_end] + ", " + rest
            fix = Fix.set_caption("move the trigger to the front", caption, moved)
            yield self.at_caption(record, f"trigger `{trigger}` is tag {position + 1}; keep-tokens is {keep}, so "
                                  "tag shuffling moves it", (start, end), fix)


def _late_triggers(corpus, terms: Terms, trigger: str, keep: int):
    """Trigger matches in captions where the trigger may sit beyond the first `keep` tags: its
    first occurrence has `keep` separators before it, or is only part of a longer word (then a
    later, whole-word occurrence may be the trigger). Captions that start with the trigger, the
    usual case, cost one find and two one-character slices."""
    captions = corpus.captions
    separators = [s for s in SEPARATORS if s in corpus.text]
    size = len(trigger)
    for i, caption in enumerate(captions):
        position = caption.find(trigger)
        if position < 0:
            continue
        before = caption[position - 1:position] if position else ""
        after = caption[position + size:position + size + 1]
        if not (before.isalnum() or before == "_" or after.isalnum() or after == "_"
                or sum([caption.count(s, 0, position) for s in separators]) >= keep):
            continue
        record = corpus.records[i]
        for m in terms.pattern.finditer(caption):
            yield record, m.start(), m.end(), m


RULES = (UnboundPerson, UnknownIdentity, MultipleIdentities, IdentityImbalance, TriggerMissing, TriggerPosition)

plugin = RulePack(RULES, config=[ENTITIES_SECTION])

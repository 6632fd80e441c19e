"""LK3xx: who and what the captions name: identity tokens for people, and the trigger word.

Two people captioned "portrait" bleed into each other; the fix is one bound identity token per
person (`person_A`) and balanced counts. The trigger is the token the LoRA is trained to respond
to; it must be in every caption, spelled exactly, and kept in front when tags are shuffled.
These rules read the `[entities]` section.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lora_core import Fix, RuleOption, Severity
from lora_core.config import Bool, ConfigKey, ConfigSection, Float, Int, ListOf, MapOf, Str
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.captions import SEPARATORS, STYLE_PREFIX, after_prefix, tag_spans
from lora_core.toolkit.conventions import (
    PLACEHOLDERS,
    ConceptToken,
    Conventions,
    Variant,
    captions_with_token,
    configured,
    find_variant,
    of_context,
    token_pattern,
)
from lora_core.toolkit.terms import Terms
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
        ConfigKey("trigger-inserted", Bool(), False,
                  "The trainer inserts the trigger into captions that lack it (ai-toolkit's trigger_word; set "
                  "when linting an ai-toolkit config): LK305 is silent, variants and position are still checked."),
        ConfigKey("concept-triggers", MapOf(Str()), {},
                  'Per kohya concept folder (its name without the repeats): the trigger its captions carry, '
                  'e.g. `{ "person_A" = "person_A", "cyberpunk_style" = "cybrpnk" }`.'),
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

    Without `entities.identities`: in a kohya folder named like an identity (`10_person_A/`,
    `entities.identity-pattern`), a person word without that folder's token.

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
        if not persons:
            return
        if not configured(ctx, "entities", "identities"):
            yield from self._identity_folders(ctx, persons)
            return
        if not identities:
            return
        flagged: set[int] = set()
        for record, start, end, match in ctx.corpus.term_matches(persons):
            if id(record) in flagged or identities.search(record.caption or ""):
                continue
            flagged.add(id(record))
            names = " / ".join(identities.terms)
            yield self.at_caption(record, f"`{match.group()}` without an identity token ({names})", (start, end))

    def _identity_folders(self, ctx: LintContext, persons: Terms) -> Iterable[Violation]:
        """Inferred: in a kohya folder named like an identity (`10_person_A/`), a person word
        without that identity token."""
        corpus = ctx.corpus
        conventions = of_context(ctx)
        by_concept = {key: t for key, t in conventions.concepts.items() if t.person}
        if not by_concept:
            return
        others = Terms(list(conventions.concept_tokens), case_sensitive=True)
        for scope in conventions.scopes:
            token = by_concept.get(scope.concept or "")
            if token is None:
                continue
            having = captions_with_token(ctx, token.concept)
            for index in scope.indexes:
                if index in having:
                    continue
                caption = corpus.captions[index]
                if others.search(caption):
                    continue  # LK308: another identity's token
                match = persons.search(caption)
                if match is None:
                    continue
                yield self.at_caption(corpus.records[index], f"`{match.group()}` without the identity token "
                                      f"`{token.concept}` ({_concept_evidence(token)})", match.span(), inferred=True)


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

    Without `entities.identities`, the identity tokens are the kohya concept folders' (LK308),
    and the finding is an info: a few deliberate group shots are normal in an identity set.

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
        inferred = not configured(ctx, "entities", "identities")
        if inferred:
            identities = _folder_identities(ctx)
        if not identities:
            return
        for record, names in identity_mentions(ctx, identities).items():
            if len(names) > 1:
                violation = self.at_caption(record, f"caption names {len(names)} identities: {', '.join(sorted(names))}"
                                            + (" (the identities of the kohya concept folders)" if inferred else ""))
                if inferred:  # a deliberate group shot in an identity set: a note, not a warning
                    violation.severity = Severity.INFO
                yield violation


def identity_mentions(ctx: LintContext, identities: Terms) -> dict[Record, set[str]]:
    found: dict[Record, set[str]] = {}
    for record, _, _, match in ctx.corpus.term_matches(identities):
        found.setdefault(record, set()).add(match.group())
    return found


class IdentityImbalance(Rule):
    """## What it does
    Dataset level: reports an identity that appears in more than `entities.max-identity-share`
    of the captions that name any identity.

    Without `entities.identities`, compares the kohya identity folders (`10_person_A/`,
    `3_person_B/`) by what each contributes to an epoch: images x repeats.

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
        if not configured(ctx, "entities", "identities"):
            yield from self._folders(dataset, ctx)
            return
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


    def _folders(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        """Inferred: identity folders (kohya concept folders named by a token) compared by what
        each contributes to an epoch, images x repeats."""
        tokens = list(of_context(ctx).concepts.values())
        if len(tokens) < 2:
            return
        samples = {t.concept: t.images * t.repeats for t in tokens}
        total = sum(samples.values())
        limit = _entities(ctx).get("max-identity-share", 0.6)
        summary = ", ".join(f"`{t.folder}` {t.images} images x {t.repeats} = {samples[t.concept]}" for t in tokens)
        for token in sorted(tokens, key=lambda t: -samples[t.concept]):
            share = samples[token.concept] / total
            if share > limit + 1e-12:
                yield self.at(dataset.location, f"`{token.concept}` is {share:.0%} of the identity folders' "
                              f"samples per epoch (limit {limit:.0%}): {summary}; balance the images or the "
                              "repeats (inferred from the kohya folders; declare [entities] identities to "
                              "count captions instead)", share=round(share, 4), count=samples[token.concept],
                              total=total, inferred=True)


class IdentityFolderMismatch(Rule):
    """## What it does
    In a kohya dataset with one folder per identity or concept (`10_person_A/`, `3_person_B/`,
    folders named by a token the captions use), reports a caption that names another folder's
    token and not its own.

    ## Why it matters
    An image of person_B captioned person_A trains person_B's face into person_A's token: the
    two identities bleed into each other. Either the caption or the folder is wrong.

    ## Example
    In `3_person_B/`:
    ```text
    person_A, portrait, front view, smiling
    ```

    ## Fix
    Correct the token, or move the image (with its caption) to the right folder.
    """

    code = "LK308"
    name = "identity-folder-mismatch"
    summary = "A caption names another concept folder's identity token, not its own"
    severity = Severity.ERROR
    options = (RuleOption("entities.identity-pattern", "what an identity token looks like"),)
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        conventions = of_context(ctx)
        tokens = conventions.concepts
        if len(tokens) < 2:
            return
        for scope in conventions.scopes:
            own = tokens.get(scope.concept or "")
            if own is None:
                continue
            having = captions_with_token(ctx, own.concept)
            by_token = {t.concept: t for t in tokens.values() if t.concept != own.concept}
            others = Terms(list(by_token), case_sensitive=True)
            for index in scope.indexes:
                if index in having:
                    continue
                match = others.search(corpus.captions[index])
                if match is None:
                    continue
                other = by_token[others.canonical(match.group())]
                yield self.at_caption(corpus.records[index], f"caption names `{other.concept}` (the token of "
                                      f"`{other.folder}`) but the image is in `{own.folder}`, whose token is "
                                      f"`{own.concept}`", match.span(), inferred=True)


def _folder_identities(ctx: LintContext) -> Terms:
    tokens = of_context(ctx).concept_tokens
    return Terms(list(tokens), case_sensitive=True) if len(tokens) >= 2 else Terms([])


class TriggerMissing(Rule):
    """## What it does
    Reports a caption without the trigger, matched exactly: letter case counts, and a zero-width
    character or odd space inside the word means it is *not* there (the message says when that
    is the case). A caption that has the trigger written another way is LK307's.

    The trigger is `entities.trigger` when configured. Otherwise lorakit infers it from the
    dataset (`[infer]`): a rare token (not a common word of CLIP's vocabulary, a style word or a
    general booru tag) in at least `infer.trigger-share` of the captions. Each kohya concept
    folder of a multi-concept dataset gets its own. A kohya folder named like an identity
    (`10_person_A/`) or with a name its captions use as a token (`5_sks_dog/`) makes that token
    expected in every caption of the folder too. The message says what was inferred and from how
    many captions, so one line of config can confirm it.

    ## Why it matters
    The trigger is what you will type at generation time. Captions without it teach the concept
    unconditionally (it leaks into every prompt); `Cybrpnk` or `cybr\\u200dpnk` are different
    tokens to CLIP, so those images do not train the trigger either.

    ## Example
    With `trigger = "cybrpnk"` (or `cybrpnk` in most captions):
    ```text
    neon city, rain, night
    cybr<U+200D>pnk, neon city
    ```

    ## Fix
    Unsafe fix: insert the trigger at the front (LK105 removes invisible characters; check that
    the image belongs to the concept, e.g. not a regularisation image). When the inferred trigger
    is followed by the same class word in its captions ("sks dog"), the fix writes it there
    instead: "a photo of a dog" becomes "a photo of sks dog". In a multi-concept
    dataset the fix only ever inserts the caption's own concept's trigger: a configured trigger
    that no caption of a concept folder has is reported there without a fix.
    """

    code = "LK305"
    name = "trigger-missing"
    summary = "The trigger token (configured or inferred) is absent (exact match)"
    severity = Severity.ERROR
    shares = "trigger-tokens"
    fix = Applicability.UNSAFE
    postprocess_captions = True
    options = (RuleOption("entities.trigger", "the trigger token"),
               RuleOption("infer.trigger-share", "the share of captions an inferred trigger needs"))
    cost = 5

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        if _entities(ctx).get("trigger-inserted"):
            return  # the trainer puts it in (ai-toolkit's trigger_word): a caption without it trains with it
        corpus = ctx.corpus
        conventions = of_context(ctx)
        persons = Terms(_entities(ctx).get("person-terms", DEFAULT_PERSON_TERMS))
        others = Terms(list(conventions.concept_tokens), case_sensitive=True)
        for expected in expected_tokens(ctx, conventions):
            token = expected.token
            terms = Terms([token], case_sensitive=True)
            having = captions_with_token(ctx, token)
            for index in sorted(set(expected.indexes).difference(having)):  # C-level: most captions have it
                caption = corpus.captions[index]
                if not caption.strip():
                    continue
                if _variant(ctx, conventions, index, token):
                    continue  # LK307: written another way
                why = terms.near_miss(caption)
                if expected.concept is not None:
                    if others.search(caption):
                        continue  # LK308: it names another concept's token
                    if expected.concept.person and persons.search(caption):
                        continue  # LK301: a person without the folder's identity
                record = corpus.records[index]
                if not expected.fixable:
                    yield self.at_caption(record, f"trigger `{token}` is missing, and no caption of "
                                          f"{conventions.scope(index).label} has it (no fix: set the folder's own "
                                          "trigger in [entities] concept-triggers)")
                    continue
                message = f"trigger `{token}` is missing" + (f": {why}" if why else "")
                if expected.evidence:
                    message += f" ({expected.evidence})"
                at = after_prefix(caption)  # after a `[style: ...]` prefix: together they are the first tag
                fix = None if why else Fix.replace(f"insert `{token}` at the front", at, at, token + ", ",
                                                    Applicability.UNSAFE)
                if not why and expected.class_word:  # "a photo of a dog" -> "a photo of sks dog"
                    bare = re.search(r"\b(?:(?:a|an|the) )?" + re.escape(expected.class_word) + r"\b", caption)
                    if bare:
                        fix = Fix.replace(f"write `{token} {expected.class_word}`", bare.start(), bare.end(),
                                          f"{token} {expected.class_word}", Applicability.UNSAFE)
                yield self.at_caption(record, message, fix=fix, inferred=bool(expected.evidence))


_PLACEHOLDER_LIKE = re.compile(r"[\[({<]\s*(?:tri?g+e?r|trigger[\s_-]?word|name)\s*[\])}>]", re.IGNORECASE)


@dataclass(frozen=True)
class ExpectedToken:
    """A token every caption of `indexes` must carry: a trigger or a concept folder's token."""

    token: str
    indexes: Sequence[int]
    evidence: str = ""  # why it is expected, when inferred ("" when configured)
    fixable: bool = True  # False: configured for the dataset, but foreign to this concept folder
    concept: ConceptToken | None = None  # set for a concept folder's token
    class_word: str = ""  # an inferred trigger's class word ("dog" in "sks dog"): where the fix puts it


def expected_tokens(ctx: LintContext, conventions: Conventions) -> list[ExpectedToken]:
    """What LK305-LK307 expect in each caption. Configured values win over inferred ones:
    `concept-triggers` for its folders, then `trigger` for the dataset, then the inferred trigger
    of each scope; then each concept folder's own token."""

    def compute() -> list[ExpectedToken]:
        settings = _entities(ctx)
        everything = range(len(ctx.corpus.records))
        scopes = conventions.scopes or []
        per_concept: dict[str, str] = settings.get("concept-triggers", {})
        out: list[ExpectedToken] = []
        covered: set[int] = set()
        for scope in scopes:
            if scope.concept is not None and per_concept.get(scope.concept):
                out.append(ExpectedToken(per_concept[scope.concept], scope.indexes))
                covered.update(scope.indexes)
        if configured(ctx, "entities", "trigger"):
            trigger = settings.get("trigger", "")
            if trigger:
                having = captions_with_token(ctx, trigger)
                if len(scopes) > 1:
                    for scope in scopes:
                        indexes = [i for i in scope.indexes if i not in covered]
                        foreign = scope.concept is not None and not having.intersection(scope.indexes)
                        out.append(ExpectedToken(trigger, indexes, fixable=not foreign))
                else:
                    out.append(ExpectedToken(trigger, [i for i in everything if i not in covered]))
        else:
            for position, inferred in conventions.triggers.items():
                if scopes[position].concept in per_concept:
                    continue
                indexes = inferred.scope.indexes
                if inferred.siblings:  # captions led by a second concept's token are that concept's
                    captions = ctx.corpus.captions
                    siblings = Terms(inferred.siblings, case_sensitive=True)
                    indexes = [i for i in indexes if not siblings.search(captions[i])]
                if inferred.placeholder:
                    continue  # ai-toolkit prepends trigger_word to a caption without `[trigger]`
                out.append(ExpectedToken(inferred.token, indexes, inferred.evidence, class_word=inferred.class_word))
        if conventions.concepts:  # folder tokens come from the folders, whatever `identities` declares
            for position, scope in enumerate(scopes):
                token = conventions.concepts.get(scope.concept or "")
                if token is None or any(e.token == token.concept and e.indexes is scope.indexes for e in out):
                    continue
                trigger = conventions.triggers.get(position)
                if trigger is not None and trigger.token == token.concept:
                    continue
                if (trigger is not None or scope.concept in per_concept) and not token.used:
                    continue  # the folder's captions use another trigger, never the folder's name
                out.append(ExpectedToken(token.concept, scope.indexes, _concept_evidence(token), concept=token))
        return out

    return ctx.memo("expected-tokens", compute)


def _concept_evidence(token: ConceptToken) -> str:
    used = f"{token.used} of its {token.images} captions have it" if token.used else "no caption has it yet"
    return (f"`{token.concept}` is the token of concept folder `{token.folder}`: {used}; "
            "pin it with [entities] identities")


def _variant(ctx: LintContext, conventions: Conventions, index: int, token: str) -> Variant | None:
    """find_variant for caption `index`, remembered for the run: LK305 and LK307 (one worker,
    `shares`) look at the same captions that lack their token."""
    found: dict[tuple[int, str], Variant | None] = ctx.memo("variants", dict)
    key = (index, token)
    if key not in found:
        found[key] = find_variant(ctx.corpus.captions[index], token, _protected_tokens(ctx, conventions))
    return found[key]


def _protected_tokens(ctx: LintContext, conventions: Conventions) -> set[str]:
    """Tokens that are never a typo of another: triggers, concept tokens, declared identities.
    Computed on the first caption that lacks its token (most lints never need it)."""

    def compute() -> set[str]:
        settings = _entities(ctx)
        # Inferred triggers only where the config does not name one (inferring them costs a pass).
        inferred = conventions.all_triggers if not configured(ctx, "entities", "trigger") else set()
        return {*inferred, *conventions.concept_tokens, *settings.get("identities", []),
                *([settings["trigger"]] if settings.get("trigger") else []),
                *settings.get("concept-triggers", {}).values()}

    return ctx.memo("protected-tokens", compute)


class TriggerVariant(Rule):
    """## What it does
    Reports the trigger (configured, or inferred as for LK305) or a concept folder's token
    written another way in a caption that lacks the exact form: other letter case (`Cybrpnk`),
    other separators (`cybrpnk style` for `cybrpnk_style`), or a typo within a small edit
    distance (one edit for tokens of up to 6 letters, two beyond; `cybrpnk_styel`). Other
    triggers, identity tokens and common words are never taken for typos.

    ## Why it matters
    CLIP splits `cybrpnk_styel` and `cybrpnk style` into other tokens than `cybrpnk_style`: the
    images captioned with the variant do not train the trigger, and teach a second, weaker one.

    ## Example
    With `cybrpnk_style` in 35 of 40 captions:
    ```text
    cybrpnk_styel, 1girl, neon lights
    cybrpnk style, city street, rain
    ```

    ## Fix
    Safe fix: the variant is replaced with the trigger's exact form.
    """

    code = "LK307"
    name = "trigger-variant"
    summary = "The trigger written another way (case, separators, a typo)"
    severity = Severity.ERROR
    shares = "trigger-tokens"
    fix = Applicability.SAFE
    options = (RuleOption("entities.trigger", "the trigger token"),
               RuleOption("infer.trigger-share", "the share of captions an inferred trigger needs"))
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        conventions = of_context(ctx)
        yield from self._placeholder_variants(ctx, conventions)
        expected: dict[int, list[tuple[str, str]]] = {}  # caption index -> (token, evidence), when lacking it
        for item in expected_tokens(ctx, conventions):
            having = captions_with_token(ctx, item.token)
            for index in set(item.indexes).difference(having):
                expected.setdefault(index, []).append((item.token, item.evidence))
        for index, tokens in sorted(expected.items()):
            corpus.captions[index]
            for token, evidence in tokens:
                if index in captions_with_token(ctx, token):
                    continue
                variant = _variant(ctx, conventions, index, token)
                if variant is None:
                    continue
                what = {"case": "letter case", "form": "separators", "typo": "a typo",
                        "look-alike": "look-alike letters of another script or accents"}[variant.kind]
                message = f"`{variant.text}` is the trigger `{token}` written another way ({what})"
                if evidence:
                    message += f"; {evidence}"
                fix = Fix.replace(f"write `{token}`", variant.start, variant.end, token, Applicability.SAFE)
                yield self.at_caption(corpus.records[index], message, (variant.start, variant.end), fix,
                                      inferred=bool(evidence))


    def _placeholder_variants(self, ctx: LintContext, conventions: Conventions) -> Iterable[Violation]:
        """In a set that uses ai-toolkit's `[trigger]`, a placeholder written another way
        (`[Trigger]`, `[triger]`, `{trigger}`) is not replaced: it trains as written."""
        placeholders = {t.token: t for t in conventions.triggers.values() if t.placeholder}
        if not placeholders:
            return
        token, trigger = next(iter(placeholders.items()))
        for record, start, end, match in ctx.corpus.matches(_PLACEHOLDER_LIKE):
            written = match.group()
            if written in PLACEHOLDERS:
                continue
            fix = Fix.replace(f"write `{token}`", start, end, token)
            yield self.at_caption(record, f"`{written}` is not ai-toolkit's placeholder `{token}` (it replaces that "
                                  f"exact text only): it trains as written ({trigger.evidence})", (start, end), fix,
                                  inferred=True)

class TriggerPosition(Rule):
    """## What it does
    Reports a trigger that is not within the first `entities.keep-tokens` tags.

    Without `entities.trigger`: an inferred trigger that is the first tag of at least 90% of its
    captions must be the first tag of every tag-list caption.

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
    postprocess_captions = True
    options = (RuleOption("entities.trigger", "the trigger token"),
               RuleOption("entities.keep-tokens", "how many leading tags stay in place"))
    cost = 6

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        settings = _entities(ctx)
        trigger, keep = settings.get("trigger", ""), settings.get("keep-tokens", 1)
        if not configured(ctx, "entities", "trigger"):
            yield from self._inferred(ctx)
            return
        if not trigger or keep < 1:
            return
        corpus = ctx.corpus
        seen: set[int] = set()
        for _, record, start, end, _ in _late_triggers(corpus, Terms([trigger], case_sensitive=True), trigger, keep):
            if id(record) in seen:
                continue
            seen.add(id(record))
            caption = record.caption or ""
            spans = tag_spans(caption)
            position = next((i for i, (a, b) in enumerate(spans) if a <= start < b), 0)
            if position < keep:
                continue
            fix = Fix.set_caption("move the trigger to the front", caption, _moved_to_front(caption, spans, position))
            yield self.at_caption(record, f"trigger `{trigger}` is tag {position + 1}; keep-tokens is {keep}, so "
                                  "tag shuffling moves it", (start, end), fix)

    def _inferred(self, ctx: LintContext) -> Iterable[Violation]:
        """An inferred trigger that is the first tag of (nearly) all its captions must be first in
        all of them: that is where kohya's keep_tokens = 1 keeps it."""
        corpus = ctx.corpus
        conventions = of_context(ctx)
        forms = conventions.forms
        for position, trigger in conventions.triggers.items():
            if trigger.first_share < 0.9 or forms.get(position, ("",))[0] != "tags":
                continue
            pattern = token_pattern(trigger.token)
            members = set(trigger.scope.indexes) if len(conventions.scopes) > 1 else None
            terms = Terms([trigger.token], case_sensitive=True)
            late = {i for i, *_ in _late_triggers(corpus, terms, trigger.token, 1)}
            for index in sorted(late):  # captions where the trigger may sit beyond the first tag
                if members is not None and index not in members:
                    continue
                caption = corpus.captions[index]
                found = pattern.search(caption)
                if found is None:
                    continue
                spans = tag_spans(caption)
                at = next((i for i, (a, b) in enumerate(spans) if a <= found.start() < b), 0)
                if at == 0 or (STYLE_PREFIX.match(caption) and at == 1 and spans[0][1] <= found.start()
                               and caption[spans[0][0]:spans[0][1]].startswith("[")):
                    continue
                fix = Fix.set_caption("move the trigger to the front", caption, _moved_to_front(caption, spans, at))
                yield self.at_caption(
                    corpus.records[index], f"trigger `{trigger.token}` is tag {at + 1}, but it is the first tag of "
                    f"{trigger.first_share:.0%} of its captions; tag shuffling (keep_tokens = 1) moves it "
                    f"({trigger.evidence})", (found.start(), found.end()), fix, inferred=True)


def _moved_to_front(caption: str, spans: list[tuple[int, int]], position: int) -> str:
    tag_start, tag_end = spans[position]
    before = spans[position - 1][1]  # cut from the end of the previous tag: ", trigger"
    rest = caption[:before] + caption[tag_end:]
    return caption[tag_start:tag_end] + ", " + rest


def _late_triggers(corpus, terms: Terms, trigger: str, keep: int):
    """Trigger matches in captions where the trigger may sit beyond the first `keep` tags: its
    first occurrence has `keep` separators before it, or is only part of a longer word (then a
    later, whole-word occurrence may be the trigger). Captions that start with the trigger, the
    usual case, cost one find and two one-character slices. Yields (caption index, record, start,
    end, match)."""
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
            yield i, record, m.start(), m.end(), m


RULES = (UnboundPerson, UnknownIdentity, MultipleIdentities, IdentityImbalance, TriggerMissing, TriggerPosition,
         TriggerVariant, IdentityFolderMismatch)

plugin = RulePack(RULES, config=[ENTITIES_SECTION])

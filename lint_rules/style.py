"""LK2xx: does every caption say the style the LoRA is meant to learn?

The mission's canonical failure: 200 cyberpunk illustrations captioned "city at night with
lights". The LoRA learns what the captions say; if "cyberpunk" is in none of them, it learns
realistic night cities. These rules read the `[style]` section.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable

from lora_core import Fix, RuleOption, Severity
from lora_core.config import ConfigKey, ConfigSection, Float, Int, ListOf, MapOf, Str
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.captions import STYLE_PREFIX, caption_style, tag_spans
from lora_core.toolkit.conventions import (
    PLACEHOLDERS,
    StyleGroup,
    compatible,
    configured,
    deviations_allowed,
    of_context,
    style_groups,
    subject_mentions,
)
from lora_core.toolkit.terms import Terms
from lora_core.violations import Applicability, Violation

STYLE_SECTION = ConfigSection(
    "style",
    "The style every caption must carry (LK2xx).",
    [
        ConfigKey("required", ListOf(Str()), [], "Every caption must contain at least one of these terms."),
        ConfigKey("prefix", Str(), "", 'The exact prefix every caption starts with, e.g. "[style: cyberpunk]".'),
        ConfigKey("vague", MapOf(Str()), {}, "Vague term -> the specific wording to use instead."),
        ConfigKey("conflicting", ListOf(Str()), [], "Terms that contradict the style (e.g. photorealistic)."),
        ConfigKey("min-coverage", Float(0.0, 1.0), 1.0, "Share of captions that must carry a required term."),
        ConfigKey("min-words", Int(0), 3, "Captions with fewer words (sentences) or tags (tag lists) are too short."),
    ],
)

_PREFIX_LIKE = STYLE_PREFIX


def _style(ctx: LintContext) -> dict:
    return ctx.section("style")


def _required(ctx: LintContext) -> Terms:
    return Terms(_style(ctx).get("required", []))


def _with_prefix(caption: str, prefix: str) -> str:
    """The caption with `prefix` in front (replacing another bracketed prefix if it has one, and
    moving the prefix there if it sits further in)."""
    existing = _PREFIX_LIKE.match(caption)
    rest = caption[existing.end():] if existing else caption
    if prefix in rest:
        at = rest.index(prefix)
        rest = rest[:at] + rest[at + len(prefix):].lstrip(" ")
    return f"{prefix} {rest.lstrip()}" if rest.strip() else prefix


class StyleTermMissing(Rule):
    """## What it does
    Reports a caption that contains none of the terms in `style.required`.

    ## Why it matters
    The caption is the only supervision: a style that no caption names is learned as "what every
    image looks like" and bleeds into everything, or not learned at all. 200 cyberpunk images
    captioned "city at night with lights" train a LoRA that draws realistic night cities.

    ## Example
    With `required = ["cyberpunk"]`:
    ```text
    city at night with lights
    ```

    Without `style.required`, the set's style is inferred (`[infer]`, docs/configuration.md):
    the lexicon's style group that at least `infer.style-required-share` (75%) of the captions
    name, or the one the kohya concept folder, `[train] name` or dataset folder is named for
    (`10_cyberpunk_style/`) when no trigger carries the concept. Captions that do not name it are
    reported as warnings, with the evidence.

    ## Fix
    Safe fix when `style.prefix` is configured: the prefix (which names the style) is added in
    front. Otherwise, rewrite the caption to name the style. A term written with an invisible
    character or a no-break space does not count, and the message says so.
    """

    code = "LK201"
    name = "style-term-missing"
    summary = "Caption contains none of the required style terms"
    severity = Severity.ERROR
    shares = "style-coverage"
    fix = Applicability.SAFE
    postprocess_captions = True
    options = (RuleOption("style.required", "the style terms"),
               RuleOption("style.prefix", "added by the fix when set"),
               RuleOption("infer.style-required-share", "when an inferred style is required"))
    cost = 5

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        required = _required(ctx)
        if not configured(ctx, "style", "required"):
            yield from self._inferred(ctx)
            return
        if not required:
            return
        prefix = _style(ctx).get("prefix", "")
        prefix_names_style = bool(prefix) and required.search(prefix) is not None
        wanted = " / ".join(f"`{t}`" for t in required.terms)
        for record in missing_style(ctx, required):
            caption = record.caption or ""
            why = required.near_miss(caption)
            message = f"caption has none of the style terms {wanted}" + (f": {why}" if why else "")
            fix = None
            if prefix_names_style:
                fix = Fix.set_caption(f"add the prefix `{prefix}`", caption, _with_prefix(caption, prefix))
            yield self.at_caption(record, message, fix=fix)


    def _inferred(self, ctx: LintContext) -> Iterable[Violation]:
        """Without `style.required`: the set's inferred style (named by most captions, or by the
        dataset's or concept folder's name when no trigger carries the concept) is expected in
        every caption of its scope. A warning: the set may mean the style to be implicit."""
        corpus = ctx.corpus
        conventions = of_context(ctx)
        for style in (style for styles in conventions.styles.values() for style in styles):
            if not style.required:
                continue
            terms = Terms(style.group.terms)
            having = corpus.having(terms)
            wanted = " / ".join(f"`{t}`" for t in style.matched[:3])
            for index in style.scope.indexes:
                if index in having or not corpus.captions[index].strip():
                    continue
                violation = self.at_caption(corpus.records[index], f"caption does not name the set's style "
                                            f"{wanted} ({style.evidence})", inferred=True)
                violation.severity = Severity.WARNING
                yield violation


def missing_style(ctx: LintContext, required: Terms) -> list[Record]:
    """Captioned records without any required term (computed once per run for LK201 and LK204)."""

    def compute() -> list[Record]:
        corpus = ctx.corpus
        having = corpus.having(required)
        return [r for i, r in enumerate(corpus.records) if i not in having and corpus.captions[i].strip()]

    return ctx.memo(("missing-style", tuple(required.terms)), compute)


class StylePrefixInconsistent(Rule):
    """## What it does
    With `style.prefix` set: reports captions that do not start with exactly that prefix.
    Without it: finds `[style: ...]`-like prefixes and reports captions that deviate from the
    dataset's most common form (prefix present vs absent, or a different prefix).

    ## Why it matters
    A style prefix used in some batches and not others splits the dataset into two concepts: the
    LoRA learns the style only when prompted with the prefix, and averages it away otherwise.

    ## Example
    ```text
    [style: watercolor] a fox in the snow
    a fox by a river                          # no prefix
    [style: water colour] a fox at dusk       # another prefix
    ```

    ## Fix
    Safe fix: the caption gets the configured (or the dataset's dominant) prefix, replacing a
    different one; where most captions have no prefix, the odd prefix is removed.
    """

    code = "LK202"
    name = "style-prefix-inconsistent"
    summary = "Style prefix present on some captions and absent or different on others"
    severity = Severity.ERROR
    fix = Applicability.SAFE
    postprocess_captions = True
    options = (RuleOption("style.prefix", "the prefix every caption must start with"),)
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        records = [r for r in ctx.captioned if (r.caption or "").strip()]
        configured = _style(ctx).get("prefix", "")
        if configured:
            for record in records:
                caption = record.caption or ""
                if caption.startswith(configured):
                    continue
                found = _PREFIX_LIKE.match(caption)
                what = f"starts with `{found.group(1)}` instead of" if found else "does not start with"
                fix = Fix.set_caption(f"start with `{configured}`", caption, _with_prefix(caption, configured))
                yield self.at_caption(record, f"caption {what} the style prefix `{configured}`", fix=fix)
            return
        # ai-toolkit's `[trigger]` is the trigger's place, not a style prefix
        prefixes = {id(r): (m.group(1) if (m := _PREFIX_LIKE.match(r.caption or "")) and m.group(1) not in PLACEHOLDERS
                            else None) for r in records}
        counts = Counter(prefixes.values())
        if len(counts) < 2 or not any(k is not None for k in counts):
            return
        dominant, dominant_count = max(counts.items(), key=lambda kv: (kv[1], kv[0] is not None))
        for record in records:
            prefix = prefixes[id(record)]
            if prefix == dominant:
                continue
            caption = record.caption or ""
            if dominant is None:
                new = caption[_PREFIX_LIKE.match(caption).end():].lstrip()  # type: ignore[union-attr]
                message = (f"caption starts with `{prefix}`, but {dominant_count} of {len(records)} captions "
                           "have no prefix")
                fix = Fix.set_caption(f"remove `{prefix}`", caption, new)
            else:
                what = f"starts with `{prefix}`" if prefix else "has no style prefix"
                message = f"caption {what}, but {dominant_count} of {len(records)} captions start with `{dominant}`"
                fix = Fix.set_caption(f"start with `{dominant}`", caption, _with_prefix(caption, dominant))
            yield self.at_caption(record, message, fix=fix)


class VagueTerm(Rule):
    """## What it does
    Reports a term listed in `style.vague`, naming the specific wording configured for it.

    ## Why it matters
    "machine" for a steampunk gear device, "landscape painting" for an ink-wash landscape: vague
    words erase the style boundary, and mixed vague wording averages the style away.

    Without `style.vague`, lorakit uses its lexicon of generic words (machine, device, thing,
    building, landscape painting, creature, woman, ...; docs/configuration.md) and reports one
    where the rest of the set uses a single specific phrasing for the same kind of subject: the
    suggestion comes from the set itself (`steampunk gear device` in 19 of 30 captions).
    A term inside its own replacement (`landscape` in `ink-wash landscape`) or inside the
    `[style: ...]` prefix is never reported.

    ## Example
    With `vague = { "machine" = "steampunk gear device" }`, or that phrasing in most captions:
    ```text
    cybrpnk, machine, steam, gears
    ```

    ## Fix
    Unsafe fix: the term is replaced with the configured (or the set's) wording (check that it
    describes this image).
    """

    code = "LK203"
    name = "vague-term"
    summary = "A vague term where the config or the set itself has a specific one"
    severity = Severity.WARNING
    fix = Applicability.UNSAFE
    postprocess_captions = True
    options = (RuleOption("style.vague", "vague term -> specific replacement"),
               RuleOption("infer.deviation-share", "how rare the generic wording must be to be reported"))
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        vague: dict[str, str] = _style(ctx).get("vague", {})
        if not configured(ctx, "style", "vague"):
            yield from self._inferred(ctx)
            return
        terms = Terms(vague)
        if not terms:
            return
        replacements = {k.casefold(): v for k, v in vague.items()}
        for record, start, end, match in ctx.corpus.term_matches(terms):
            term = terms.canonical(match.group())
            better = replacements[term.casefold()]
            if _inside(record.caption or "", start, end, better):
                continue  # `landscape` inside `ink-wash landscape`: already the specific wording
            if _in_prefix(record.caption or "", start):
                continue  # the `[style: ...]` prefix is the set's own label (LK202), not a description
            fix = Fix.replace(f"replace with `{better}`", start, end, better, Applicability.UNSAFE)
            yield self.at_caption(record, f"vague term `{match.group()}`: say `{better}`", (start, end), fix)

    def _inferred(self, ctx: LintContext) -> Iterable[Violation]:
        """Without `style.vague`: a generic word (from the built-in lexicon) where the rest of the
        set uses one specific phrasing for the same kind of subject; the suggestion is that phrasing."""
        corpus = ctx.corpus
        conventions = of_context(ctx)
        excluded = frozenset(t.lower() for t in (*conventions.all_triggers, *conventions.concept_tokens))
        for hints in conventions.subjects.values():
            for hint in hints:
                phrase = hint.phrase
                candidates: set[int] = set()
                for word in hint.kind.generic:  # C-level substring search over the whole corpus
                    candidates.update(corpus.with_substring(word))
                if len(conventions.scopes) > 1:
                    candidates.intersection_update(hint.scope.indexes)
                for index in sorted(candidates):
                    if phrase in corpus.folded[index]:
                        continue
                    caption = corpus.captions[index]
                    for mention in subject_mentions(caption, excluded, conventions.kinds):
                        if mention.kind is not hint.kind or mention.phrase is not None or _in_prefix(caption,
                                                                                                      mention.start):
                            continue
                        word = caption[mention.start:mention.end]
                        fix = Fix.replace(f"replace with `{phrase}`", mention.start, mention.end, phrase,
                                          Applicability.UNSAFE)
                        yield self.at_caption(corpus.records[index], f"vague term `{word}`: say `{phrase}` "
                                              f"({hint.evidence})", (mention.start, mention.end), fix, inferred=True)
                        break


def _in_prefix(caption: str, start: int) -> bool:
    prefix = _PREFIX_LIKE.match(caption)
    return prefix is not None and start < prefix.end()


def _inside(caption: str, start: int, end: int, phrase: str) -> bool:
    """True when caption[start:end] lies inside an occurrence of `phrase` (case-insensitive)."""
    folded, wanted = caption.casefold(), phrase.casefold()
    at = folded.find(wanted, max(0, end - len(wanted)))
    while at != -1 and at <= start:
        if at + len(wanted) >= end:
            return True
        at = folded.find(wanted, at + 1)
    return False


class StyleCoverageLow(Rule):
    """## What it does
    Dataset level: reports when the share of captions carrying a `style.required` term is below
    `style.min-coverage`, with the share and the first captions that lack one.

    ## Why it matters
    One caption without the style term is a slip (LK201); a third of them is a dataset that
    teaches two things. This is the number to watch while re-captioning.

    ## Example
    `required = ["cyberpunk"]`, `min-coverage = 0.95`, 120 of 200 captions say "cyberpunk": 60%.

    ## Fix
    Caption the images that lack the style (LK201 lists each one).
    """

    code = "LK204"
    name = "style-coverage-low"
    summary = "Share of captions with a required style term is below style.min-coverage"
    severity = Severity.ERROR
    shares = "style-coverage"
    options = (RuleOption("style.required", "the style terms"),
               RuleOption("style.min-coverage", "the share required (0.0 to 1.0)"))
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        required = _required(ctx)
        total = sum(1 for r in ctx.captioned if (r.caption or "").strip())
        if not required or not total:
            return
        missing = missing_style(ctx, required)
        share = (total - len(missing)) / total
        minimum = _style(ctx).get("min-coverage", 1.0)
        if share + 1e-12 >= minimum:
            return
        worst = ", ".join(f"`{r.image}`" for r in missing[:5]) + (" ..." if len(missing) > 5 else "")
        where = dataset.location
        yield self.at(
            where, f"{share:.0%} of captions ({total - len(missing)}/{total}) carry a style term "
            f"({' / '.join(required.terms)}); at least {minimum:.0%} required. Missing in: {worst}",
            share=round(share, 4), missing=len(missing), total=total)


class ConflictingStyleTerm(Rule):
    """## What it does
    Reports a term from `style.conflicting`: words that contradict the style being trained.

    ## Why it matters
    "photorealistic" in a watercolor LoRA's captions tells the model that the watercolor look is
    not what "photorealistic" means, and pulls the learned style towards photos.

    Without `style.conflicting`: a style term from the built-in lexicon whose group conflicts
    with the set's style (the configured `style.required`, else the inferred style: the group
    at least half the captions name, or the one the set is named for). "photorealistic" or
    "3d render" in a watercolor set, "cartoon style" in a low-poly set. Reported only while the
    conflicting group is at most `infer.deviation-share` (20%) of the set.

    ## Example
    With `conflicting = ["photorealistic", "photo"]`, or in a set where most captions say
    "watercolor":
    ```text
    cybrpnk, photorealistic street, neon
    ```

    ## Fix
    Unsafe fix, when the term is a tag of its own (`flat style`, `photorealistic`, also with
    `style` / `art style` after it): the tag is removed. Check the picture first: if it really is
    a photo, move it out of this dataset instead (`lorakit review` drops it). A term inside a
    longer phrase or a sentence has no fix: rewrite it by hand.
    """

    code = "LK205"
    name = "conflicting-style-term"
    summary = "A term that contradicts the (configured or inferred) style appears"
    severity = Severity.WARNING
    fix = Applicability.UNSAFE
    options = (RuleOption("style.conflicting", "the contradicting terms"),
               RuleOption("infer.style-share", "when a style is the set's (inferred)"),
               RuleOption("infer.styles", "more style groups"))
    cost = 1

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        if not configured(ctx, "style", "conflicting"):
            yield from self._inferred(ctx)
            return
        terms = Terms(_style(ctx).get("conflicting", []))
        if not terms:
            return
        for record, start, end, match in ctx.corpus.term_matches(terms):
            if names_an_object(record.caption or "", match.group(), end):
                continue  # "a cartoon pillow" in a photo set: a thing shown, not the picture's style
            yield self.at_caption(record, f"`{match.group()}` contradicts the style", (start, end),
                                  _tag_removal(record.caption or "", start, end))

    def _inferred(self, ctx: LintContext) -> Iterable[Violation]:
        """Without `style.conflicting`: terms of a style group that conflicts with the set's style
        (configured in `style.required`, else inferred) in a minority of its captions."""
        corpus = ctx.corpus
        conventions = of_context(ctx)
        settings = ctx.section("infer")
        groups = conventions.groups if conventions.enabled else style_groups(settings.get("styles"), ctx.lexicon)
        configured_group = _configured_group(ctx, groups)
        scopes: list[tuple[list[StyleGroup], str, tuple[int, ...]]] = []
        if configured_group is not None:
            scopes.append(([configured_group], f"the configured style `{configured_group.name}`",
                           tuple(range(len(corpus.records)))))
        elif conventions.enabled:
            for styles in conventions.styles.values():
                first = styles[0]
                scopes.append(([s.group for s in styles], f"the set's style `{first.group.name}` ({first.evidence})",
                               first.scope.indexes))
        share = settings.get("deviation-share", 0.2)
        for dominant, why, indexes in scopes:
            members = set(indexes)
            for group in groups:
                # A conflict with every style the set is about (a watercolor set that also says
                # "ink-wash" has two: "line art" goes with both, "photorealistic" with neither).
                if any(compatible(style, group) for style in dominant):
                    continue
                terms = Terms(group.terms)
                hits = sorted(corpus.having(terms) & members)
                if not hits or len(hits) > deviations_allowed(len(indexes), share):
                    continue  # a large share is a second style of the set, not a slip
                for index in hits:
                    record = corpus.records[index]
                    caption = corpus.captions[index]
                    match = next((m for m in terms.finditer(caption)
                                  if not names_an_object(caption, m.group(), m.end())), None)
                    if match is None:
                        continue  # "a cartoon pillow": a thing in the picture, not the picture's style
                    yield self.at_caption(record, f"`{match.group()}` ({group.name}) conflicts with {why}",
                                          match.span(), _tag_removal(caption, *match.span()),
                                          inferred=configured_group is None)


_STYLE_TAIL = re.compile(r"\s+(?:art\s+)?style\Z", re.IGNORECASE)


def _tag_removal(caption: str, start: int, end: int) -> Fix | None:
    """Remove the tag that is the term (`flat style`, `photorealistic`) with one separator; None
    when the term is part of a longer tag or a sentence (removing it would break the wording)."""
    spans = list(tag_spans(caption))
    for k, (tag_start, tag_end) in enumerate(spans):
        if tag_start <= start and end <= tag_end:
            rest = caption[tag_start:start] + caption[end:tag_end]
            if rest.strip() and not _STYLE_TAIL.fullmatch(" " + rest.strip()):
                return None
            if len(spans) == 1:
                return None  # the whole caption: nothing would be left
            if k == 0:
                return Fix.replace("remove the conflicting tag", tag_start, spans[1][0], "", Applicability.UNSAFE)
            return Fix.replace("remove the conflicting tag", spans[k - 1][1], tag_end, "", Applicability.UNSAFE)
    return None


# Words after a style term that keep it about the picture or a drawn figure ("cartoon style",
# "anime girl"); any other word makes the term describe a thing in the picture ("cartoon pillow").
_PICTURE_WORD_TEXT = (
    "style styled art artwork artworks illustration illustrations drawing drawings painting paintings render "
    "rendering renders image images picture pictures look aesthetic aesthetics shading lines linework effect "
    "effects filter finish photo photos photograph photographs photography portrait portraits scene scenes "
    "screenshot screencap still stills frame frames version versions girl girls boy boys woman women man men "
    "person people character characters figure figures face faces eyes art-style of by and or with in"
)
_PICTURE_WORDS = frozenset(_PICTURE_WORD_TEXT.split())
_NEXT_WORD = re.compile(r"(-?)([A-Za-z]+)")


_RENDERING_ADJECTIVE = re.compile(r"(?:ic|al|ed|ish|esque|like)\Z", re.IGNORECASE)


def names_an_object(caption: str, term: str, end: int) -> bool:
    """A style noun that modifies a thing shown (`cartoon pillow`, `cartoon-egg cushion`, `anime
    poster`) describes an object in the picture, not the picture's style. An adjective of
    rendering (`photorealistic fur`, `cel-shaded`, `cartoonish`) is about the picture whatever
    follows it."""
    if _RENDERING_ADJECTIVE.search(term.split()[-1]):
        return False
    rest = caption[end:end + 40]
    stripped = rest.lstrip(" ")
    found = _NEXT_WORD.match(stripped)
    if found is None or (not found.group(1) and stripped is rest):
        return False  # punctuation or the end follows: the term stands alone
    return found.group(2).lower() not in _PICTURE_WORDS


def _configured_group(ctx: LintContext, groups: Iterable[StyleGroup]) -> StyleGroup | None:
    """The lexicon group of a configured `style.required` term, if any."""
    required = {t.casefold() for t in _style(ctx).get("required", [])}
    for group in groups:
        if required.intersection(t.casefold() for t in group.terms):
            return group
    return None


class CaptionTooShort(Rule):
    """## What it does
    Reports captions with fewer than `style.min-words` tags (tag lists) or words (sentences).

    ## Why it matters
    A one- or two-word caption ("portrait", "machine") leaves everything in the image unnamed, so
    the LoRA binds all of it to those words: the trigger or the style word absorbs the background,
    the lighting and the subject.

    ## Example
    ```text
    cybrpnk, city
    ```

    ## Fix
    Describe subject, features, lighting and background (see `[template]`).
    """

    code = "LK206"
    name = "caption-too-short"
    summary = "Fewer than style.min-words words or tags"
    severity = Severity.WARNING
    options = (RuleOption("style.min-words", "the minimum (default 3)"),)
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        minimum = _style(ctx).get("min-words", 3)
        if minimum <= 1:
            return
        captions = ctx.corpus.captions
        spaces = map(str.count, captions, itertools.repeat(" "))
        commas = map(str.count, captions, itertools.repeat(","))
        # Plainly long enough captions (the vast majority) are skipped by two C-level counts.
        short = [i for i, (s, c) in enumerate(zip(spaces, commas)) if s + c + 1 < minimum * 2]
        for i in short:
            record, caption = ctx.corpus.records[i], captions[i]
            if not caption.strip():
                continue  # LK003
            tags = len(tag_spans(caption))
            words = len(caption.split())
            count, unit = (tags, "tag") if caption_style(caption) == "tags" or tags > 1 else (words, "word")
            if count < minimum:
                yield self.at_caption(record, f"caption has {count} {unit}{'s' if count != 1 else ''}; "
                                      f"at least {minimum} describe an image", count=count)


class StyleNamedManyWays(Rule):
    """## What it does
    Reports, once per set (or kohya concept folder), a style that the captions name in three or
    more ways: `watercolor`, `watercolour`, `water color` and `aquarelle` across one watercolor
    set. Names that contain one another (`watercolor` and `watercolor painting`) count as one;
    a name needs at least two captions.

    ## Why it matters
    The style is one concept; each name is a different token sequence to the text encoder. Split
    four ways, each name is learned from a quarter of the images, and the name you prompt with
    carries only its share of the style.

    ## Example
    ```text
    a fox, watercolor            # 20 captions
    a fox, watercolour painting  # 8 captions
    a fox, water color           # 5 captions
    a fox, aquarelle             # 3 captions
    ```

    ## Fix
    Pick one name (usually the most used) and write it in every caption; `[style] required` with
    that one name keeps it so (LK201).
    """

    code = "LK207"
    name = "style-named-many-ways"
    summary = "The set's style written three or more different ways"
    severity = Severity.WARNING
    options = (RuleOption("infer.enabled", "the set's style is inferred"),)
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        conventions = of_context(ctx)
        if not conventions.enabled or configured(ctx, "style", "required"):
            return  # the config names the style: its list of names is the user's choice
        corpus = ctx.corpus
        for styles in conventions.styles.values():
            style = styles[0]
            # Inference saw the names on a sample: fewer than three there, no exact count.
            if len(set(_collapse_roots(Counter(style.matched)).values())) < 3:
                continue
            members = set(style.scope.indexes)
            having = {term: corpus.having(Terms([term])) & members for term in style.matched}
            counts = Counter({term: len(found) for term, found in having.items() if found})
            roots = _collapse_roots(counts)
            by_root: dict[str, set[int]] = {}
            for term, found in having.items():
                if term in roots:
                    by_root.setdefault(roots[term], set()).update(found)
            # Names of one style are alternatives: one caption uses one of them. Words that go
            # together ("photorealistic photography") are a description, not several names.
            names = []
            for name, n in _collapse_names(counts, roots):
                root = roots[name]
                others = set().union(*(found for other, found in by_root.items() if other != root))
                if len(by_root[root] - others) >= 0.8 * n and n >= 2:
                    names.append((name, n))
            if len(names) < 3:
                continue
            listing = ", ".join(f"`{name}` ({n})" for name, n in names[:6])
            yield self.at(ctx.dataset.location, f"the style `{style.group.name}` is named {len(names)} ways"
                          f"{style.scope.where}: {listing}; each name is learned from its share of the images only: "
                          f"write one (e.g. `{names[0][0]}`) everywhere", names=len(names), set_wide=True)


def _collapse_roots(counts: Counter[str]) -> dict[str, str]:
    """name -> the name it counts as: names that contain another (`watercolor painting` holds
    `watercolor`), and a plural or a hyphenated spelling of one (`watercolors`, `ink-wash`)."""
    roots: dict[str, str] = {}
    for name in sorted(counts, key=len):
        root = _name_root(name)
        shorter = [r for r in set(roots.values()) if r != root and re.search(rf"(?<!\w){re.escape(r)}(?!\w)", root)]
        roots[name] = min(shorter, key=len) if shorter else root
    return roots


def _collapse_names(counts: Counter[str], roots: dict[str, str]) -> list[tuple[str, int]]:
    """The names merged by their roots (`_collapse_roots`), most used first, each shown as most written."""
    merged: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for name, n in counts.most_common():
        merged[roots[name]] += n
        shown.setdefault(roots[name], name)
    return [(shown[root], n) for root, n in merged.most_common()]


def _name_root(name: str) -> str:
    words = name.lower().replace("-", " ").split()
    if words and len(words[-1]) > 3 and words[-1].endswith("s"):
        words[-1] = words[-1][:-1]
    return " ".join(words)


RULES = (StyleTermMissing, StylePrefixInconsistent, VagueTerm, StyleCoverageLow, ConflictingStyleTerm,
         CaptionTooShort, StyleNamedManyWays)

plugin = RulePack(RULES, config=[STYLE_SECTION])

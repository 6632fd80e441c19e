"""LK1xx: caption text hygiene. Whitespace, separators, tags, invisible and typographic
characters, duplicated captions, and consistency of caption style across the dataset.

These run on every caption of every lint, so most scan the whole caption corpus with one regular
expression (`ctx.corpus`, a C-speed pass over all captions) and do Python work only where a
match is found; the others use one cheap string operation per caption.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from lorakit_rules.writing import RULES as WRITING_RULES
from lorakit_rules.writing import coarse_styles, positions

from lora_core import Fix, RuleOption, Severity
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.captions import (
    SEPARATORS,
    duplicate_tag_candidates,
    near_duplicate_key,
    normalise_tag,
    tag_spans,
    word_bags,
)
from lora_core.toolkit.conventions import of_context, squash
from lora_core.toolkit.forms import forms_of
from lora_core.violations import Applicability, Edit, Violation

_WHITESPACE = re.compile(
    r"(?P<lead>\A[ \t\r\n]+)|(?P<trail>[ \t\r\n]+\Z)|(?P<newline>[ \t]*[\r\n]+[ \t\r\n]*)"
    r"|(?P<before>[ \t]+(?=[,;|]))|(?P<run>[ \t]{2,}|\t)"
)


@functools.cache
def corpus_pattern(template: str, sep: str) -> re.Pattern[str]:
    """Compile a pattern whose `{sep}` stands for the corpus separator (caption boundaries)."""
    return re.compile(template.format(sep=re.escape(sep)))


_FOLD_BLANKS = bytes.maketrans(b"\t\n\r;|", b"\x01\x01\x01,,")


def _fold_blanks(data: bytes) -> bytes:
    return data.translate(_FOLD_BLANKS)


class Whitespace(Rule):
    """## What it does
    Reports leading or trailing whitespace, two or more spaces in a row, tabs, line breaks inside
    a caption, and spaces before a separator (`neon city , rain`).

    ## Why it matters
    kohya's tag shuffling and `keep_tokens` split on `", "`: a stray space makes `"rain"` and
    `" rain"` different tags, and a leading space shifts which tags are kept in front. Line breaks
    inside a sidecar caption are worse: kohya sd-scripts reads only the first line.

    ## Example
    ```text
    " cybrpnk,  neon city , rain "
    ```

    ## Fix
    Safe fix: trims the ends, collapses runs to one space, replaces line breaks with a space and
    removes spaces before separators.
    """

    code = "LK101"
    name = "whitespace"
    summary = "Leading/trailing/double spaces, tabs or line breaks in a caption"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    postprocess_captions = True
    cost = 5

    _MESSAGES = {
        "lead": ("caption starts with whitespace", "remove leading whitespace", ""),
        "trail": ("caption ends with whitespace", "remove trailing whitespace", ""),
        "newline": ("line break inside the caption (kohya reads only the first line of a sidecar)",
                    "replace the line break with a space", " "),
        "before": ("space before a separator", "remove the space", ""),
        "run": ("{n} spaces in a row", "collapse to one space", " "),
    }

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        sep = corpus.sep
        # Line breaks and tabs become \x01, `;` and `|` become `,`: five scans instead of nine.
        suspects = ("  ", "\x01", " ,", sep + " ", " " + sep)
        found = corpus.containing(suspects, transform=_fold_blanks)
        if not found:
            return
        forms = forms_of(ctx)
        # kohya reads the first line of a sidecar; ai-toolkit (its `[trigger]` placeholder, or its
        # config) and the metadata-file trainers read the whole caption.
        sidecars = dataset.path.suffix.lower() not in (".csv", ".jsonl")
        placeholder = sidecars and any("\n" in (r.caption or "").strip() for r in found) and any(
            t.placeholder for t in of_context(ctx).triggers.values())  # inference only when a line break is there
        first_line_only = sidecars and not placeholder and not ctx.section("entities").get("trigger-inserted")
        why_whole = ("ai-toolkit reads the whole caption file" if placeholder
                     else "the trainer config's trainer reads the whole caption file" if sidecars
                     else "the whole caption is read; only kohya's sidecars lose the lines after the first")
        for record in found:
            caption = record.caption or ""
            if not caption.strip(" \t\r\n"):
                continue  # whitespace only: LK003
            for m in _WHITESPACE.finditer(caption):
                kind = m.lastgroup or "run"
                message, fix_text, replacement = self._MESSAGES[kind]
                if kind == "run" and m.group() == "\t":
                    message, fix_text = "tab inside the caption", "replace the tab with a space"
                start, end = m.span()
                message = message.format(n=end - start)
                fix = Fix.replace(fix_text, start, end, replacement)
                violation = self.at_caption(record, message, span=(start, end), fix=fix)
                if kind == "newline" and not first_line_only:
                    violation.message = "line break inside the caption (" + why_whole + ")"
                    violation.severity = Severity.INFO
                elif kind != "newline" and not (kind == "before" and forms[positions(ctx)[id(record)]] == "tags"):
                    # CLIP, T5 and the LLM encoders collapse blanks: tidy, but nothing trains differently
                    violation.severity = Severity.INFO
                yield violation


class MixedSeparators(Rule):
    """## What it does
    Reports tags separated by `;` or `|` in a dataset (or caption) that separates tags with `,`,
    and the other way round when another separator dominates the dataset.

    ## Why it matters
    Trainers split tags on one separator (kohya: `caption_separator`, default `,`). Tags joined
    by another separator become one long tag: shuffling and `keep_tokens` move them as a block,
    and tag statistics are wrong.

    ## Example
    ```text
    cybrpnk, neon city; rain | night
    ```

    ## Fix
    Safe fix: each odd separator is replaced with the dataset's dominant one.
    """

    code = "LK102"
    name = "mixed-separators"
    summary = "`,` mixed with `;` or `|` in a caption or across the dataset"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    postprocess_captions = True
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        if ";" not in corpus.text and "|" not in corpus.text:
            return  # the common case: commas only
        usage = {sep: corpus.text.count(sep) for sep in ",;|"}
        dominant = max(",;|", key=lambda s: (usage[s], s == ","))
        odd = "".join(s for s in ",;|" if s != dominant)
        pattern = re.compile(rf"[ \t]*[{re.escape(odd)}][ \t]*")
        forms = forms_of(ctx)
        index_of = positions(ctx)
        for record in corpus.containing(odd):
            if forms[index_of[id(record)]] in ("prose", "phrases"):
                continue  # a semicolon in a sentence is punctuation, not a tag separator
            caption = record.caption or ""
            matches = list(pattern.finditer(caption))
            edits = tuple(Edit(m.start(), m.end(), dominant + " ") for m in matches if m.end() < len(caption))
            first = matches[0]
            message = (f"caption mixes `{dominant}` with `{first.group().strip()}` as tag separators"
                       if dominant in caption else
                       f"tags separated by `{first.group().strip()}`; this dataset separates tags with `{dominant}`")
            fix = Fix(f"use `{dominant}` between tags", Applicability.SAFE, edits) if edits else None
            yield self.at_caption(record, message, span=first.span(), fix=fix)

class DuplicateTag(Rule):
    """## What it does
    Reports a tag that appears twice in one caption, ignoring letter case and spacing (any
    kind of space: `neon city` and `neon<NBSP>city` are the same tag to CLIP, which splits on
    every Unicode space; LK105 reports the odd space itself).

    ## Why it matters
    A repeated tag doubles its weight in the text embedding and wastes CLIP's 75-token budget;
    it is usually a merge of two captioners' output or a copy-paste slip.

    ## Example
    ```text
    cybrpnk, neon city, rain, Neon City
    ```

    ## Fix
    Safe fix: the later copy is removed together with its separator.
    """

    code = "LK103"
    name = "duplicate-tag"
    summary = "The same tag twice in one caption"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    cost = 12

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = forms_of(ctx)
        for index in duplicate_tag_candidates(corpus):
            if forms[index] == "prose":
                continue  # clauses of a sentence are not tags (LK111 reports a repeated phrase)
            yield from self._report(corpus.records[index])

    def _report(self, record: Record) -> Iterable[Violation]:
        caption = record.caption or ""
        seen: set[str] = set()
        previous_end = 0
        for start, end in tag_spans(caption):
            key = normalise_tag(caption[start:end])
            if key in seen:
                fix = Fix.replace("remove the repeated tag", previous_end, end, "")
                yield self.at_caption(record, f"tag `{caption[start:end]}` appears twice", (start, end), fix)
            else:
                seen.add(key)
            previous_end = end

_EMPTY_TAG = re.compile(rf"\A[ \t]*[{SEPARATORS}][ \t]*|[{SEPARATORS}][ \t]*(?=[{SEPARATORS}]|[ \t]*\Z)")


_FULL_WIDTH_SEPARATORS = [c.encode() for c in SEPARATORS[3:]]


def _despace(data: bytes) -> bytes:
    for separator in _FULL_WIDTH_SEPARATORS:
        if separator in data:
            data = data.replace(separator, b",")
    return data.translate(_SEPARATORS_TO_COMMA, b" \t")


_SEPARATORS_TO_COMMA = bytes.maketrans(b";|", b",,")


class EmptyTag(Rule):
    """## What it does
    Reports empty tags: two separators in a row (`,,` or `, ,`), or a separator at the start or
    end of a caption.

    ## Why it matters
    kohya's tag shuffling keeps the empty tag as a token of its own, and `keep_tokens` counts it:
    the trigger you meant to keep in front may be shuffled away.

    ## Example
    ```text
    cybrpnk,, neon city, rain,
    ```

    ## Fix
    Safe fix: the extra separator is removed.
    """

    code = "LK104"
    name = "empty-tag"
    summary = "`,,` or a leading/trailing separator"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    postprocess_captions = True
    cost = 6

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        sep = corpus.sep
        separators = [c for c in SEPARATORS if c in corpus.text]
        # With blanks removed, an empty tag is two separators in a row or one at a caption boundary.
        # With blanks removed and every separator written `,`: two in a row, or one at either end.
        suspects = [",,", sep + ",", "," + sep] if separators else []
        for record in corpus.containing(suspects, transform=_despace):
            caption = record.caption or ""
            if not caption.strip():
                continue
            for m in _EMPTY_TAG.finditer(caption):
                start, end = m.span()
                at_start = not caption[:start].strip()
                at_end = not caption[end:].strip()
                message = ("caption starts with a separator" if at_start else
                           "caption ends with a separator" if at_end else "empty tag between two separators")
                fix = Fix.replace("remove the separator", start, end, "")
                yield self.at_caption(record, message, (start, end), fix)

# Characters that are invisible or look like a space but are not one.
_INVISIBLE = (
    "[\x00-\x08\x0b\x0c{low_controls}\x7f-\x9f\u00a0\u00ad\u034f\u061c\u115f\u1160\u180e\u2000-\u200f"
    "\u2028-\u202f\u205f-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_SPACE_LIKE = set("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u2028\u2029")


class InvisibleCharacter(Rule):
    """## What it does
    Reports zero-width characters (U+200B, U+200C, U+200D, U+2060, U+FEFF), no-break and other
    non-ASCII spaces, soft hyphens, bidirectional controls and control characters (NUL included).

    ## Why it matters
    They are invisible in every editor but not to the tokenizer: `cybr\\u200bpnk` is not your
    trigger `cybrpnk`, and `neon\\u00a0city` is not the tag `neon city`. Captions copied from web
    pages and chat apps carry them; trigger-word matching then fails without a visible reason.

    ## Example
    ```text
    cybr<U+200B>pnk, neon<U+00A0>city
    ```

    ## Fix
    Safe fix: space-like characters become a normal space, the others are removed.
    """

    code = "LK105"
    name = "invisible-character"
    summary = "Zero-width, NBSP or control characters (they break trigger-word matching)"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    postprocess_captions = True
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        low_controls = "".join(chr(c) for c in range(0x0E, 0x20) if chr(c) != corpus.sep)
        pattern = corpus_pattern(_INVISIBLE.replace("{low_controls}", re.escape(low_controls)), corpus.sep)
        for record, start, end, m in corpus.matches(pattern):
            caption = record.caption or ""
            char = m.group()
            name = unicodedata.name(char, "CONTROL CHARACTER").lower()
            replacement = " " if char in _SPACE_LIKE else ""
            message = f"invisible character U+{ord(char):04X} ({name}) in `{_word_around(caption, start)}`"
            fix_text = "replace it with a normal space" if replacement else "remove it"
            yield self.at_caption(record, message, (start, end), Fix.replace(fix_text, start, end, replacement))

def _word_around(caption: str, index: int) -> str:
    start = index
    while start > 0 and not caption[start - 1].isspace() and caption[start - 1] not in SEPARATORS:
        start -= 1
    end = index + 1
    while end < len(caption) and not caption[end].isspace() and caption[end] not in SEPARATORS:
        end += 1
    shown = caption[start:end]
    return "".join("\u2423" if c == caption[index] else c for c in shown)[:40] or "\u2423"


_TYPOGRAPHIC = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\uff0c": ",", "\u3001": ",", "\uff1b": ";", "\uff1a": ":", "\uff01": "!",
    "\uff1f": "?", "\uff08": "(", "\uff09": ")", "\u3002": ".", "\uff0e": ".", "\u3000": " ",
}
# Typographic punctuation that is right in prose (a T5 or LLM encoder reads it as written); in
# a tag list it is still reported (CLIP tokenises `—` and `-` differently, and tags get compared).
_PROSE_PUNCTUATION = frozenset("\u2018\u2019\u201a\u201b\u2032\u00b4\u02bc\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"
                               "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2026")
_TYPOGRAPHIC_RE = re.compile("[" + "".join(_TYPOGRAPHIC) + "]")


class TypographicCharacters(Rule):
    """## What it does
    Reports smart quotes, dashes, the ellipsis character and full-width punctuation (`，` `、`
    `：` `（` `）` and the ideographic space).

    ## Why it matters
    CLIP's tokenizer maps `“neon”` and `"neon"` to different tokens, and a full-width comma `，`
    does not separate tags for kohya's shuffling: `neon city，rain` is one tag. Word processors
    and IMEs insert these silently.

    ## Example
    ```text
    “cybrpnk” portrait — neon city，rain…
    ```

    ## Fix
    Safe fix: each character is replaced with its ASCII equivalent.
    """

    code = "LK106"
    name = "typographic-characters"
    summary = "Smart quotes, non-ASCII punctuation or full-width separators"
    severity = Severity.INFO
    fix = Applicability.SAFE
    postprocess_captions = True
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        if corpus.text.isascii():
            return
        forms = forms_of(ctx)
        index_of = positions(ctx)
        for record, start, end, m in corpus.matches(_TYPOGRAPHIC_RE):
            char = m.group()
            if char in _PROSE_PUNCTUATION and forms[index_of[id(record)]] in ("prose", "phrases"):
                continue  # quotes, dashes and an ellipsis are ordinary punctuation in prose
            ascii_form = _TYPOGRAPHIC[char]
            name = unicodedata.name(char, "?").lower()
            fix = Fix.replace(f"replace with `{ascii_form}`", start, end, ascii_form)
            yield self.at_caption(record, f"typographic character `{char}` ({name})", (start, end), fix)

def distinct_images(records: list[Record], by_file: bool = False) -> list[Record]:
    """The records of distinct image files, first listing kept: an image listed twice (LK006) is
    not a second image with the same caption. `by_file`: compare resolved paths (a trainer config
    can reach one file under two names), else names."""
    seen: set[str] = set()
    kept = []
    for record in records:
        key = (record.image_path if by_file else None) or record.image or f"#{record.index}"
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


class DuplicateCaption(Rule):
    """## What it does
    Reports a caption text shared, word for word, by several images.

    ## Why it matters
    Identical captions tell the model that different images mean the same thing; the LoRA averages
    them. It is the signature of a captioner that gave up ("a city at night") or of a bulk
    copy-paste, the cyberpunk failure in the lorakit brief.

    ## Example
    Forty rows all captioned `city at night with lights`.

    ## Fix
    Describe what differs between the images. `lorakit caption` can draft distinct captions.
    """

    code = "LK107"
    name = "duplicate-caption"
    summary = "One caption text shared by several images"
    severity = Severity.WARNING
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        keys = [c.strip() for c in corpus.captions]
        repeated = {key for key, n in Counter(keys).items() if n > 1 and key}
        if not repeated:
            return
        groups: dict[str, list[Record]] = {}
        for record, key in zip(corpus.records, keys):
            if key in repeated:
                groups.setdefault(key, []).append(record)
        for records in groups.values():
            records = distinct_images(records, dataset.read_through_config)
            if len(records) < 2:
                continue  # one image listed twice (LK006), not two images with one caption
            first = records[0]
            others = len(records) - 1
            for record in records:
                where = "" if record is first else f" (first: `{first.image}`)"
                yield self.at_caption(record, f"same caption as {others} other image{'s' if others > 1 else ''}{where}",
                                      group_size=len(records))

class NearDuplicateCaption(Rule):
    """## What it does
    Reports captions that differ from another caption only trivially: letter case, punctuation,
    spacing, articles (a/an/the) or, for tag lists, the order of the tags. It groups captions by
    a normalised key, so it stays linear in the size of the dataset.

    ## Why it matters
    These are duplicates in disguise (see LK107), usually from re-running a captioner or
    hand-editing one caption of a copied batch.

    ## Example
    ```text
    img_01.png: cybrpnk, neon city, rain
    img_02.png: Rain, neon city, cybrpnk
    ```

    ## Fix
    Make the captions describe what differs between the images.
    """

    code = "LK108"
    name = "near-duplicate-caption"
    summary = "Captions that differ only trivially (case, punctuation, tag order)"
    severity = Severity.INFO
    cost = 14

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        bags = word_bags(corpus)
        repeated = {bag for bag, n in Counter(bags).items() if n > 1 and bag[0]}
        candidates: dict[tuple[int, int, int], list[Record]] = {}
        for record, bag in zip(corpus.records, bags):
            if bag in repeated:
                candidates.setdefault(bag, []).append(record)
        for records in candidates.values():
            groups: dict[str, list[Record]] = {}
            for record in records:
                groups.setdefault(near_duplicate_key(record.caption or ""), []).append(record)
            for group in groups.values():
                yield from self._report(distinct_images(group, dataset.read_through_config))

    def _report(self, records: list[Record]) -> Iterable[Violation]:
        if len(records) < 2:
            return
        first_text = (records[0].caption or "").strip()
        if all((r.caption or "").strip() == first_text for r in records):
            return  # all identical: LK107
        for record in records[1:]:
            if (record.caption or "").strip() == first_text:
                continue
            yield self.at_caption(
                record, f"caption differs only trivially from the caption of `{records[0].image}`: "
                f"`{first_text[:60]}`")

class MixedCaptionStyle(Rule):
    """## What it does
    Reports captions written in the minority style when a dataset mixes tag lists
    (`cybrpnk, neon city, rain`) with sentences (`a neon city in the rain`).

    ## Why it matters
    The text encoder sees two different distributions of prompts; the LoRA then responds well to
    one prompting style and weakly to the other, and tag-based tricks (shuffling, keep_tokens,
    caption dropout by tag) treat each sentence as one giant tag.

    In a multi-concept kohya dataset, each concept folder is compared with itself: a tagged
    character beside a described style is two conventions, not a mix. With inference on, when
    at least 90% of a scope's classified captions (and at least `infer.min-captions`) share one
    form, the few others are a warning rather than an info: the set has a convention, and they
    break it.

    ## Example
    480 captions are tag lists, 20 are sentences from an auto-captioner.

    ## Fix
    Rewrite the minority in the majority style (or caption the whole set with one captioner).
    """

    code = "LK109"
    name = "mixed-caption-style"
    summary = "Some captions are tag lists, others sentences"
    severity = Severity.INFO
    shares = "caption-forms"  # LK109 and LK110 classify the captions once (coarse_styles)
    cost = 5

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = coarse_styles(ctx)
        # Each kohya concept folder may have its own form (a tagged character, a described style).
        conventions = of_context(ctx)
        groups = [s.indexes for s in conventions.scopes] if len(conventions.scopes) > 1 else [range(len(forms))]
        settings = ctx.section("infer")
        # With inference on, a form that (nearly) the whole scope follows is its convention: the
        # few captions in the other form are a warning (an auto-captioner mixed into a tagged set).
        settled = settings.get("min-captions", 5) if conventions.enabled else None
        # The counts above are cheap and sort every caption; a caption is reported only when the
        # finer classification (lora_core.toolkit.forms) agrees that it is a tag list in a prose
        # set or the other way round: a phrase list ("stucco facade, tiled roof, and arched
        # doors.") is neither, and fits both.
        fine = forms_of(ctx)
        opposite = {"tags": "prose", "sentence": "tags"}
        for indexes in groups:
            for violation in self._check_group(corpus.records, forms, indexes,
                                               conventions.scope(indexes[0]).where if len(groups) > 1 else "", settled,
                                               settings.get("deviation-share", 0.2)):
                index = positions(ctx)[id(violation.record)]
                own = "tags" if violation.data.get("form") == "tags" else "prose"
                found = fine.set_form(index)
                if fine[index] == own and found is not None and found[0] == opposite[violation.data["form"]]:
                    yield violation

    def _check_group(self, records: list[Record], forms: list[str | None], indexes: Iterable[int],
                     where: str, settled: int | None = None, deviation: float = 0.2) -> Iterable[Violation]:
        styles: dict[str, list[Record]] = {"tags": [], "sentence": []}
        for index in indexes:
            style = forms[index]
            if style is not None:
                styles[style].append(records[index])
        tags, sentences = len(styles["tags"]), len(styles["sentence"])
        if not tags or not sentences:
            return
        minority, majority = ("sentence", "tags") if sentences <= tags else ("tags", "sentence")
        label = {"tags": "a tag list", "sentence": "a sentence"}
        plural_label = {"tags": "tag lists", "sentence": "sentences"}
        total = tags + sentences
        # A clear convention: at least min-captions classified, the minority at most a tenth
        # (and within the deviation share).
        convention = (settled is not None and total >= settled
                      and len(styles[minority]) <= min(0.1, deviation) * total)
        for record in styles[minority]:
            violation = self.at_caption(
                record, f"caption is {label[minority]}, but {len(styles[majority])} of {total} captions{where} are "
                f"{plural_label[majority]}" + (" (the set's form, inferred)" if convention else ""),
                tags=tags, sentences=sentences, form=minority)
            if convention:
                violation.severity = Severity.WARNING
            yield violation


class TagSpelling(Rule):
    """## What it does
    In booru-style tag sets (WD-tagger output: `long_hair`, `1girl`, `solo` in at least 30% of
    the captions), reports a tag written another way than the rest of the set writes it:
    `long hair` where the set says `long_hair`, `1 girl` for `1girl`, `t-shirt` for `t shirt`
    (spaces, underscores and hyphens differ; letter case alone is not reported: CLIP lower-cases
    every caption). Reported only when one spelling is clearly the set's (more captions use it
    than every other spelling together).

    ## Why it matters
    `long_hair` and `long hair` are different CLIP tokens: the concept is split across two
    spellings, each learned from half the images, and the prompt you type matches only one.

    ## Example
    `long_hair` in 120 captions:
    ```text
    1girl, long hair, smile
    ```

    ## Fix
    Safe fix: the tag is rewritten in the set's dominant spelling.
    """

    code = "LK110"
    name = "tag-spelling"
    summary = "A tag written another way than the set's dominant spelling (long hair / long_hair)"
    severity = Severity.WARNING
    shares = "caption-forms"
    fix = Applicability.SAFE
    options = (RuleOption("infer.enabled", "the dominant spelling is inferred from the set"),)
    cost = 4

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        conventions = of_context(ctx)
        if not conventions.enabled or not any(conventions.booru.values()):
            return
        corpus = ctx.corpus
        forms = coarse_styles(ctx)
        tagged = [i for i, form in enumerate(forms) if form == "tags"]
        if len(tagged) < ctx.section("infer").get("min-captions", 5):
            return
        # Every tag of every caption in one C-level split of the joined corpus (tags counted per
        # occurrence; a tag twice in one caption is LK103's).
        pieces = _tag_splitter(corpus.sep).split(corpus.text)
        counts = Counter(map(str.strip, pieces))
        counts.pop("", None)
        spellings: dict[str, list[str]] = {}
        for tag in counts:
            key = squash(tag)
            if key:
                spellings.setdefault(key, []).append(tag)
        tokens = (*conventions.all_triggers, *conventions.concept_tokens)
        protected = {squash(t) for t in tokens}
        minimum = ctx.section("infer").get("min-evidence", 3)
        wrong: dict[str, str] = {}
        for key, tags in spellings.items():
            if len(tags) < 2 or key in protected:
                continue
            by_form: Counter[str] = Counter()
            for tag in tags:
                by_form[_form(tag)] += counts[tag]
            if len(by_form) < 2:
                continue
            best, best_count = by_form.most_common(1)[0]
            if best_count <= sum(by_form.values()) - best_count or best_count < minimum:
                continue
            dominant = max((t for t in tags if _form(t) == best), key=lambda t: counts[t])
            for tag in tags:
                if _form(tag) != best:
                    wrong[tag] = dominant
        if not wrong:
            return
        candidates: set[int] = set()
        for tag in wrong:
            candidates.update(corpus.with_substring(tag))
        tagged_set = set(tagged)
        for index in sorted(candidates & tagged_set):
            caption = corpus.captions[index]
            for a, b in tag_spans(caption):
                better = wrong.get(caption[a:b])
                if better is None:
                    continue
                fix = Fix.replace(f"write `{better}`", a, b, better, Applicability.SAFE)
                yield self.at_caption(corpus.records[index], f"tag `{caption[a:b]}` is written `{better}` "
                                      f"{counts[better]} times in this set", (a, b), fix, inferred=True)


@functools.cache
def _tag_splitter(sep: str) -> re.Pattern[str]:
    return re.compile(f"[{re.escape(SEPARATORS + sep)}]")


def _form(tag: str) -> str:
    """A tag's spelling as CLIP sees it: letter case and runs of spaces do not count."""
    return " ".join(tag.split()).casefold()


RULES = (
    Whitespace, MixedSeparators, DuplicateTag, EmptyTag, InvisibleCharacter, TypographicCharacters,
    DuplicateCaption, NearDuplicateCaption, MixedCaptionStyle, TagSpelling, *WRITING_RULES,
)

plugin = RulePack(RULES)

"""LK111-LK116 (the hygiene pack's second module): how a caption is written, whatever its form.
Auto-captioners and hurried editing leave marks that no tag rule sees: a phrase said twice, a
caption cut off mid-phrase, a detokeniser's `old - school`, two tags that cannot both be true, a
reviewer's note left in, and the same block of words in every caption, which the trigger can
then never absorb.

Each rule is precision-first: it reports only the unambiguous shape of its problem, and says
which caption form it assumed (lora_core.toolkit.forms).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from lora_core import Fix, Severity
from lora_core.datasets.model import Dataset
from lora_core.rules import LintContext, Rule
from lora_core.toolkit.captions import SEPARATORS, caption_styles
from lora_core.toolkit.conventions import BOORU_GENERAL, is_rare_token
from lora_core.toolkit.forms import forms_of
from lora_core.violations import Applicability, Violation

_FUNCTION_WORD_TEXT = (
    "a an the of with in on at to from by for and or but while as into onto behind near beside between "
    "over under through across against around along above below her his their its is are was were"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_TEXT.split())
_WORD = r"[A-Za-z][A-Za-z'\-]*"


class RepeatedPhrase(Rule):
    """## What it does
    Reports a phrase of two or more words said twice in a row (`a red carpet and a red carpet`,
    `a man with a man with`), and a doubled small word (`the the`), in sentences and phrase lists.
    (In a tag list, LK103 reports a repeated tag.)

    ## Why it matters
    Auto-captioners loop, and edits get pasted twice: the repeated words double their weight in
    the text embedding and spend the encoder's token budget on nothing.

    ## Example
    ```text
    a living room with a red carpet and a red carpet
    ```

    ## Fix
    Unsafe fix: the second copy is removed (check that the caption still says what you meant).
    """

    code = "LK111"
    name = "repeated-phrase"
    summary = "A phrase repeated back to back in a sentence (`a red carpet and a red carpet`)"
    severity = Severity.WARNING
    fix = Applicability.UNSAFE
    cost = 4

    # two to six words, then the same words again (joined by nothing, a comma or "and")
    _PATTERN = re.compile(rf"(?<![\w'\-])((?:{_WORD}[ \t]+){{1,5}}{_WORD})((?:[ \t]*,[ \t]*|[ \t]+and[ \t]+|[ \t]+))"
                          r"\1(?![\w'\-])", re.IGNORECASE)
    _DOUBLED = re.compile(r"(?<![\w'\-])(a|an|the|of|with|in|on|and|to|is)[ \t]+\1(?![\w'\-])", re.IGNORECASE)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = forms_of(ctx)
        for index in not_tag_lists(ctx):
            caption = corpus.captions[index]
            if " " not in caption:
                continue
            for pattern, joint in ((self._PATTERN, 2), (self._DOUBLED, 0)):
                for match in pattern.finditer(caption):
                    if joint and all(w in _FUNCTION_WORDS for w in match.group(1).lower().split()):
                        continue  # "on and on": idiom-like runs of small words are not worth a warning
                    if forms[index] == "tags":
                        continue  # LK103 reports a repeated tag
                    start, end = match.span()
                    cut = match.start(joint) if joint else start + len(match.group(1))
                    fix = Fix.replace("remove the repetition", cut, end, "", Applicability.UNSAFE)
                    yield self.at_caption(corpus.records[index], f"`{match.group(1)}` is repeated: "
                                          f"`{caption[start:end]}`", (start, end), fix)


class TruncatedCaption(Rule):
    """## What it does
    Reports a sentence-form caption that ends on a word that cannot end a phrase: an article,
    a preposition or a conjunction (`... standing in front of a`), with no closing punctuation.

    ## Why it matters
    Auto-captioners stop at their token limit and editors cut text: the caption promises an
    object and never names it, so the model learns the dangling words as part of the concept.

    ## Example
    ```text
    a woman in a white dress standing in front of a
    ```

    ## Fix
    Finish the sentence (re-run the captioner with a larger max_new_tokens).
    """

    code = "LK112"
    name = "truncated-caption"
    summary = "A sentence that stops mid-phrase (`... in front of a`)"
    severity = Severity.WARNING
    cost = 2

    # Words that cannot end a phrase. Not "in", "on", "around", "behind", "her": "with the lights
    # on", "people walking around", "looking at her" end well.
    _DANGLING = frozenset(("a", "an", "the", "of", "with", "and", "or", "but", "into", "onto", "from", "between",
                           "their", "its", "at", "to", "for", "while", "than", "whose"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = forms_of(ctx)
        for index in not_tag_lists(ctx):
            caption = corpus.captions[index]
            head, _, last = caption.rstrip().rpartition(" ")
            if last.lower() not in self._DANGLING or head.count(" ") < 2 or forms[index] == "tags":
                continue  # too short to tell a fragment from a cut; a tag list has no sentence
            start = len(head) + 1
            yield self.at_caption(corpus.records[index], f"caption ends on `{last}`: it was cut off mid-phrase "
                                  f"(`...{caption[max(0, start - 30):start + len(last)].lstrip()}`)",
                                  (start, start + len(last)))


# Detokeniser artifacts: BLIP-family and older taggers split words at apostrophes and hyphens
# and join them back with spaces.
_ARTIFACTS = re.compile(
    r"(?<=[A-Za-z]) (?:'s|n't|'re|'ll|'ve|'m|'d)(?![A-Za-z])"  # "it 's", "do n't"
    r"|(?<=[A-Za-z]) - (?=[A-Za-z])"  # "old - school", "t - shirt"
    r"|(?<=[A-Za-z]) ' (?=[A-Za-z])",  # "man ' s"
)


class TokenizerArtifact(Rule):
    """## What it does
    Reports words that a detokeniser split with spaces: `old - school`, `t - shirt`, `it 's`,
    `do n't`, `man ' s`. A spaced hyphen is reported only between short pieces (one of them five
    letters or fewer, neither a small word such as `of` or `with`) in a caption without an en or
    em dash: between longer words it is an aside (` - `), which is punctuation.

    ## Why it matters
    CLIP and T5 read `old - school` as three pieces, not the word `old-school` the image shows;
    the artifact is learned as the style of the captions and comes back in prompts.

    ## Example
    ```text
    a man in an old - school t - shirt , it 's raining
    ```

    ## Fix
    Safe fix: the spaces inside the word are removed (`old-school`, `it's`).
    """

    code = "LK113"
    name = "tokenizer-artifact"
    summary = "Words split by a detokeniser (`old - school`, `it 's`)"
    severity = Severity.WARNING
    fix = Applicability.SAFE
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        if " - " not in corpus.text and " '" not in corpus.text:
            return
        for record, start, end, match in corpus.matches(_ARTIFACTS):
            caption = record.caption or ""
            text = match.group()
            if text == " - " and _dash_is_punctuation(caption, start):
                continue
            word_start = start - len(re.search(r"[A-Za-z]*\Z", caption[:start]).group())  # type: ignore[union-attr]
            after = re.match(r"[A-Za-z]*", caption[end:])
            word_end = end + (len(after.group()) if after else 0)
            joined = caption[word_start:word_end].replace(" ", "")
            fix = Fix.replace(f"write `{joined}`", word_start, word_end, joined)
            yield self.at_caption(record, f"`{caption[word_start:word_end]}` is split by spaces: write `{joined}`",
                                  (word_start, word_end), fix)


def coarse_styles(ctx: LintContext) -> list[str | None]:
    """Each caption's coarse style ("tags", "sentence", None) by C-level counts, once a run: LK109
    and LK110 sort captions by it, and the writing rules look only at the ones not tag lists."""
    found: list[str | None] = ctx.memo("caption-forms", lambda: caption_styles(ctx.corpus.captions))
    return found


def not_tag_lists(ctx: LintContext) -> list[int]:
    """Indexes of the captions whose coarse style is not a tag list."""
    found: list[int] = ctx.memo("not-tag-lists", lambda: [i for i, style in enumerate(coarse_styles(ctx))
                                                          if style != "tags"])
    return found


def positions(ctx: LintContext) -> dict[int, int]:
    """id(record) -> its index in ctx.corpus, built once per run (shared with the hygiene pack)."""
    found: dict[int, int] = ctx.memo("corpus-positions", lambda: {id(r): i for i, r in enumerate(ctx.corpus.records)})
    return found


def _dash_is_punctuation(caption: str, start: int) -> bool:
    """A spaced hyphen used as a dash, not a split word: both neighbours longer than five letters,
    either a small word (`of`, `with`), or the caption also has an en or em dash."""
    before = re.search(r"([A-Za-z]+)\Z", caption[:start])
    after = re.match(r" - ([A-Za-z]+)", caption[start:])
    if before is None or after is None:
        return True
    left, right = before.group(1).lower(), after.group(1).lower()
    if "\u2014" in caption or "\u2013" in caption:
        return True
    # "old - school", "t - shirt", "x - ray", "close - up": short or hyphen-typical pieces
    return not (len(left) <= 5 or len(right) <= 5) or left in _FUNCTION_WORDS or right in _FUNCTION_WORDS


# Tags that cannot both describe one subject. Each entry: two groups; a caption holding a tag of
# each (as whole tags, `_` and space alike) is reported, unless it shows several people.
_CONTRADICTIONS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    ("hair length", frozenset({"short hair", "very short hair"}),
     frozenset({"long hair", "very long hair", "absurdly long hair"})),
    ("framing", frozenset({"full body", "full-body", "full body shot", "full-length"}),
     frozenset({"upper body", "upper-body", "portrait", "close-up", "closeup", "face focus", "head shot",
                "headshot", "bust shot", "upper portrait", "cowboy shot"})),
    ("mouth", frozenset({"open mouth", "mouth open"}), frozenset({"closed mouth", "mouth closed"})),
    ("eyes", frozenset({"closed eyes", "eyes closed"}), frozenset({"open eyes", "eyes open"})),
    ("time of day", frozenset({"day", "daytime"}), frozenset({"night", "nighttime", "night sky"})),
    ("setting", frozenset({"indoors", "indoor"}), frozenset({"outdoors", "outdoor"})),
    ("count", frozenset({"solo"}), frozenset({"2girls", "3girls", "4girls", "multiple girls", "2boys", "3boys",
                                              "multiple boys", "multiple others", "group"})),
)
_SEVERAL_PEOPLE = frozenset({"2girls", "3girls", "4girls", "5girls", "6+girls", "multiple girls", "2boys", "3boys",
                             "multiple boys", "1boy 1girl", "couple", "group", "multiple others", "crowd"})
_TAG_SPLIT = re.compile(f"[{SEPARATORS}]")


class ContradictoryTags(Rule):
    """## What it does
    In tag lists and phrase lists, reports two tags that cannot both describe the picture's
    subject: `short_hair` with `long_hair`, `full body` with `upper body` or `portrait`,
    `open_mouth` with `closed_mouth`, `day` with `night`, `indoors` with `outdoors`, `solo`
    with `2girls`. Tags are compared whole (`short hair` and `short_hair` alike); a caption
    that shows several people (`2girls`, `multiple boys`) is not judged on the per-person pairs.

    ## Why it matters
    A tagger that is unsure outputs both; the model then learns each tag from pictures that do
    not show it, and both prompts come out muddled.

    ## Example
    ```text
    tk, 1girl, solo, short_hair, long_hair, full_body, upper_body
    ```

    ## Fix
    Look at the image and remove the tag that is wrong.
    """

    code = "LK114"
    name = "contradictory-tags"
    summary = "Two tags that cannot both be true (`short_hair` and `long_hair`, `full body` and `portrait`)"
    severity = Severity.WARNING
    cost = 3

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = forms_of(ctx)
        # Only captions holding a word of both sides of some pair are split into tags; in a large
        # set, only when a sample of it uses those words at all (a byte scan per word costs ~10 ms
        # per 100,000 captions).
        first = sorted({_key_word(tag) for _, one, _ in _CONTRADICTIONS for tag in one})
        second = sorted({_key_word(tag) for _, _, other in _CONTRADICTIONS for tag in other})
        if len(corpus.captions) > _SAMPLED_ABOVE:
            sample = " ".join(corpus.folded[i] for i in range(0, len(corpus.captions), 50))
            if not any(w in sample for w in first) or not any(w in sample for w in second):
                return
        candidates = set(corpus.with_substring(first[0]))
        for word in first[1:]:
            candidates.update(corpus.with_substring(word))
        paired: set[int] = set()
        for word in second:
            paired.update(candidates.intersection(corpus.with_substring(word)))
        for index in sorted(paired):
            caption = corpus.captions[index]
            if forms[index] == "prose" or ("," not in caption and "|" not in caption and ";" not in caption):
                continue
            tags = {" ".join(t.replace("_", " ").split()).lower() for t in _TAG_SPLIT.split(caption)}
            tags.discard("")
            several = bool(tags & _SEVERAL_PEOPLE)
            for aspect, one_side, other_side in _CONTRADICTIONS:
                if several and aspect != "time of day" and aspect != "setting":
                    continue
                one, other = tags & one_side, tags & other_side
                if one and other:
                    a, b = sorted(one)[0], sorted(other)[0]
                    span = _tag_span(caption, b)
                    yield self.at_caption(corpus.records[index], f"`{a}` and `{b}` contradict each other ({aspect}): "
                                          "at most one describes the picture", span)


_SAMPLED_ABOVE = 20_000  # captions: above this, a rule that scans the corpus for rare words looks at a sample first


def _key_word(tag: str) -> str:
    """The longest word of a tag, lower case (for a substring prefilter on the casefolded corpus)."""
    return max((w for w in re.split(r"[ _\-]", tag) if w), key=len).lower()


def _tag_span(caption: str, tag: str) -> tuple[int, int] | None:
    pattern = re.compile(r"(?<![\w])" + r"[ _]".join(re.escape(w) for w in tag.split()) + r"(?![\w])", re.IGNORECASE)
    found = pattern.search(caption)
    return found.span() if found else None


_NOTES = (
    r"\b(?:TODO|FIXME|TBD)\b"
    r"|\?{2,}"
    r"|\[(?:check|fix|todo|verify|review|edit|unsure|unclear|needs? [a-z ]+|\?)[^\]\n]{0,40}\]"
    r"|(?i:\blorem ipsum\b)"
    r"|(?i:{start}[ \t]*(?:sure[!,.]|certainly[!,.]|here(?:'s| is) (?:a|an|the) (?:caption|description)))"
    r"|(?i:\bas an ai\b|\bi(?:'m| am) sorry,? but\b|\bi can(?:not|'t) (?:help|assist|describe|provide)\b)"
)


_MARKS = ["TODO", "FIXME", "TBD", "??"]
# Substrings one of which every other note holds.
_NOTE_HINTS = ["TODO", "FIXME", "TBD", "??", "[check", "[fix", "[todo", "[verify", "[review", "[edit", "[unsure",
               "[unclear", "[need", "[?", "[Check", "[TODO", "orem ipsum", "ure!", "ure,", "ure.", "ertainly",
               "ere is", "ere's", "s an AI", "s an ai", "sorry", "Sorry", "annot help", "annot assist",
               "annot describe", "annot provide", "an't help", "an't assist", "an't describe", "an't provide"]


def _hinted(caption: str) -> bool:
    return any(hint in caption for hint in _NOTE_HINTS)


class ReviewerNote(Rule):
    """## What it does
    Reports text that is about the caption rather than the picture: reviewer notes (`TODO`,
    `FIXME`, `[check]`, `???`), placeholder text (`lorem ipsum`), and a vision-language model's
    chatter (`Sure! Here is a caption:`, `I'm sorry, but I can't describe ...`).

    ## Why it matters
    Every word of a caption is trained: a note or a refusal becomes part of the concept, and a
    refusal means the picture was never described at all.

    ## Example
    ```text
    [check] a woman in a red coat ??? TODO: lighting
    ```

    ## Fix
    Remove the note, or re-caption the image.
    """

    code = "LK115"
    name = "reviewer-note"
    summary = "A note, placeholder or captioner chatter left in a caption (`TODO`, `???`, `Sure! Here is...`)"
    severity = Severity.WARNING
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        pattern = re.compile(_NOTES.replace("{start}", "\\A"))
        # Reviewer marks in any caption (four byte scans); chatter and bracketed notes in the
        # captions that are not tag lists.
        records = corpus.containing(_MARKS)
        marked = {id(r) for r in records}
        records += [corpus.records[i] for i in not_tag_lists(ctx)
                    if _hinted(corpus.captions[i]) and id(corpus.records[i]) not in marked]
        for record in records:
            caption = record.caption or ""
            for match in pattern.finditer(caption):
                start, end = match.span()
                yield self.at_caption(record, f"`{match.group().strip()}` is a note or chatter, not a description of "
                                      "the picture", (start, end))


class BoilerplateBlock(Rule):
    """## What it does
    Reports, once per set (or kohya concept folder), a block that (nearly) every caption repeats
    word for word: twelve or more words of prose (an identity description pasted into every
    caption of a character, a template sentence), or a run of tags holding six or more trait tags
    (a fixed trait list; names such as the trigger and meta tags such as `1girl` do not count).
    The finding quotes the block and counts the captions. A trigger with a few identity tags, a
    DreamBooth instance prompt or a short template head is not a block.

    ## Why it matters
    A LoRA binds to its trigger whatever the captions leave unsaid. Traits written into every
    caption are never left to the trigger: the character only looks right when the whole block
    is prompted, and the block's words (not the trigger) pick up the concept ("fusion", as
    caption-audit calls it). A constant block also spends tokens on nothing that varies.

    ## Example
    In 118 of 118 captions:
    ```text
    ..., she has long straight black hair with full bangs, dark brown eyes and a small beauty mark, ...
    ```

    ## Fix
    Remove the block (keep what varies from picture to picture); keep a trait only where it
    differs or where you want it promptable apart from the trigger.
    """

    code = "LK116"
    name = "boilerplate-block"
    summary = "The same block (12+ words, or 6+ trait tags) in (nearly) every caption of a set"
    severity = Severity.WARNING
    cost = 4

    _WORDS = 12  # words in a prose block
    _TAGS = 6  # trait tags in a tag-list block (the trigger, names and booru meta tags not counted)
    _SHARE = 0.9

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        corpus = ctx.corpus
        forms = forms_of(ctx)
        groups: dict[object, list[int]] = {}
        for index, record in enumerate(corpus.records):
            if corpus.captions[index].strip():
                groups.setdefault(record.concept, []).append(index)
        for concept, indexes in groups.items():
            if len(indexes) < 10:
                continue
            found = forms.set_form(indexes[0])
            tagged = found is not None and found[0] in ("tags", "phrases")
            block = self._block(corpus.captions, indexes, tagged)
            if block is None:
                continue
            phrase, count, size = block
            where = f" of concept folder `{concept}`" if concept is not None else ""
            unit = "tags" if tagged else "words"
            first = next(i for i in indexes if _squash(phrase) in _squash(corpus.captions[i]))
            shown = phrase if len(phrase) <= 120 else phrase[:117] + "..."
            yield self.at(ctx.dataset.location, f"{count} of {len(indexes)} captions{where} repeat the same block of "
                          f"{size} {unit}: `{shown}` (e.g. `{corpus.records[first].image}`); what every caption says "
                          "is never left to the trigger to learn: remove it, or keep only what varies",
                          captions=count, size=size, set_wide=True)

    def _block(self, captions: list[str], indexes: list[int], tagged: bool) -> tuple[str, int, int] | None:
        """The longest run of units (words, or tags) shared by at least _SHARE of the captions,
        found on a sample and counted exactly (substring search) on all of them."""
        size = self._TAGS if tagged else self._WORDS
        step = max(1, len(indexes) // 300)
        sample = indexes[::step]
        shingles: Counter[tuple[str, ...]] = Counter()
        units_of: dict[int, list[str]] = {}
        for i in sample:
            units = _units(captions[i], tagged)
            units_of[i] = units
            shingles.update({tuple(units[k:k + size]) for k in range(len(units) - size + 1)})
        need = self._SHARE * len(sample)
        common = {s for s, n in shingles.items() if n >= need}
        if not common:
            return None
        best: list[str] = []  # grown from the first sampled caption's run of common shingles
        units = units_of[sample[0]]
        k = 0
        while k <= len(units) - size:
            if tuple(units[k:k + size]) in common:
                end = k + size
                while end < len(units) and tuple(units[end - size + 1:end + 1]) in common:
                    end += 1
                if end - k > len(best):
                    best = units[k:end]
                k = end
            else:
                k += 1
        if not best or all(u in _FUNCTION_WORDS for u in best):
            return None
        if tagged and sum(1 for u in best if _is_trait(u)) < self._TAGS:
            return None  # a trigger, a name and `1girl, solo` lead every caption by convention
        phrase = (", " if tagged else " ").join(best)
        key = _squash(phrase)
        count = sum(1 for i in indexes if key in _squash(captions[i]))
        if count < self._SHARE * len(indexes):
            return None
        return (phrase if tagged else _original_case(captions[sample[0]], best)), count, len(best)


def _is_trait(tag: str) -> bool:
    """A tag that describes (`long_hair`, `round glasses`), not a name (the trigger, a series or a
    character tag, which is a rare token) or a booru meta tag (`1girl`, `solo`)."""
    words = tag.replace("_", " ").split()
    if not words or tag in BOORU_GENERAL or tag.replace(" ", "_") in BOORU_GENERAL:
        return False
    return not any(is_rare_token(word) for word in words)


def _units(caption: str, tagged: bool) -> list[str]:
    if tagged:
        return [" ".join(t.split()).lower() for t in _TAG_SPLIT.split(caption) if t.strip()]
    return re.findall(r"\S+", caption.lower())


def _squash(text: str) -> str:
    """Lower case, separators as `,` and single spaces: how a block is looked for."""
    return " ".join(_TAG_SPLIT.sub(", ", text.lower()).replace(" ,", ",").split())


def _original_case(caption: str, words: list[str]) -> str:
    """The block as the caption writes it."""
    found = re.search(r"\s+".join(re.escape(w) for w in words), caption, re.IGNORECASE)
    return found.group() if found else " ".join(words)


# Registered by the hygiene pack (LK1xx), as its second module.
RULES = (RepeatedPhrase, TruncatedCaption, TokenizerArtifact, ContradictoryTags, ReviewerNote, BoilerplateBlock)

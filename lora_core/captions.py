"""Caption text helpers shared by rules: tags, separators, caption style, normalisation.

A caption is either a tag list ("cybrpnk, neon city, rain, night") or a sentence ("a neon city
at night in the rain"). Tags are the pieces between separators; both ASCII and full-width
separators split tags, so a full-width comma cannot hide a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Characters that separate tags: ASCII comma, semicolon, pipe, and their full-width forms.
SEPARATORS = ",;|\uff0c\u3001\uff1b"
TAG = re.compile(f"[^{SEPARATORS}]+")
_SPACES = re.compile(r"\s+")
STOPWORDS = frozenset({"a", "an", "the"})


def tag_spans(caption: str) -> list[tuple[int, int]]:
    """(start, end) of every non-empty tag, surrounding whitespace excluded."""
    spans = []
    for m in TAG.finditer(caption):
        start, end = m.span()
        text = m.group()
        stripped = text.strip()
        if not stripped:
            continue
        start += len(text) - len(text.lstrip())
        spans.append((start, start + len(stripped)))
    return spans


def normalise_tag(tag: str) -> str:
    """Case- and spacing-insensitive form of a tag, for comparisons."""
    return _SPACES.sub(" ", tag.strip()).casefold()


def caption_style(caption: str) -> str | None:
    """"tags", "sentence", or None when the caption is too short or mixed to tell."""
    return caption_styles([caption])[0]


def caption_styles(captions: list[str]) -> list[str | None]:
    """caption_style for many captions (a tight loop: this runs over every caption)."""
    out: list[str | None] = []
    append = out.append
    for caption in captions:
        if caption.isascii():
            pieces = 1 + caption.count(",") + caption.count(";") + caption.count("|")
        else:
            pieces = max(1, len(TAG.findall(caption)))
        words = caption.count(" ") + 1  # approximate on purpose
        if not caption or caption.isspace():
            append(None)
        elif pieces >= 3 and words <= 3 * pieces:
            append("tags")
        elif (pieces <= 2 and words >= 4) or words > 4 * pieces:
            append("sentence")
        else:
            append(None)
    return out


_KEY_SEPARATORS = re.compile(f"[{SEPARATORS}]")
# Articles, punctuation and underscores: what "differs only trivially" ignores.
_TRIVIAL = re.compile(rf"(?:\b(?:a|an|the)\b|[^\w{SEPARATORS}]|_)+")
_TRIVIAL_AND_SEPARATORS = re.compile(r"(?:\b(?:a|an|the)\b|\W|_)+")


# ASCII punctuation -> space, for the fast path of word_bag (most captions are ASCII).
_ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_ARTICLES = re.compile(r" (?:an?|the)(?= )")


#: Bulk normalisation works on this many captions at a time, to bound peak memory.
CHUNK = 4096


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def word_bags(corpus) -> list[int]:  # noqa: ANN001 - a lora_core.rules.Corpus
    """For each caption, an order-independent hash of its words without articles and
    punctuation: a cheap key every pair of near-duplicates shares (and, very rarely, a pair that
    is not; `near_duplicate_key` decides). Normalised in bulk, then one pass over all words."""
    keys: list[int] = []
    for chunk in _chunks(corpus.folded):
        keys.extend(_word_bags(chunk, corpus.sep))
    return keys


def _word_bags(folded: list[str], sep: str) -> list[int]:
    text = " " + sep.join(folded).replace(sep, f" {sep} ") + " "
    for char in _ASCII_PUNCTUATION:
        if char in text:
            text = text.replace(char, " ")
    text = _ARTICLES.sub("", text)
    if not text.isascii():  # non-ASCII punctuation: only those captions take the slow path
        pieces = text.split(sep)
        for i, caption in enumerate(folded):
            if not caption.isascii():
                pieces[i] = _TRIVIAL_AND_SEPARATORS.sub(" ", caption)
        text = f" {sep} ".join(pieces)
    # str.split() treats the ASCII separator characters as whitespace: mark boundaries with a word.
    marker = next(m for m in ("\ue000", "\ue001", "\U0010fffd", "\U0010fffc") if m not in text)
    keys: list[int] = []
    total = 0
    for word in text.replace(sep, marker).split():
        if word == marker:
            keys.append(total)
            total = 0
        else:
            total += hash(word)
    keys.append(total)
    return keys


def near_duplicate_key(caption: str) -> str:
    """Captions with the same key differ only in case, punctuation, spacing, articles, or (for
    tag lists) tag order."""
    cleaned = _TRIVIAL.sub(" ", caption.casefold())
    if caption_style(caption) == "tags":
        tags = [" ".join(t.split()) for t in _KEY_SEPARATORS.split(cleaned)]
        return "|".join(sorted(t for t in tags if t))
    return " ".join(_KEY_SEPARATORS.sub(" ", cleaned).split())


def duplicate_tag_candidates(corpus) -> list[int]:  # noqa: ANN001 - a lora_core.rules.Corpus
    """Indexes of captions that may repeat a tag (case- and spacing-insensitive); a superset,
    confirmed by the caller with tag_spans. Normalised in bulk, then one pass over all tags."""
    candidates: list[int] = []
    for n, chunk in enumerate(_chunks(corpus.folded)):
        candidates.extend(n * CHUNK + i for i in _duplicate_tag_candidates(chunk, corpus.sep))
    return candidates


def _duplicate_tag_candidates(folded: list[str], sep: str) -> list[int]:
    text = sep.join(folded)
    for other in SEPARATORS[1:]:
        if other in text:
            text = text.replace(other, ",")
    if "\t" in text:
        text = text.replace("\t", " ")
    while "  " in text:
        text = text.replace("  ", " ")
    tags = text.replace(" ,", ",").replace(", ", ",").replace(sep, "," + sep + ",").split(",")
    candidates: list[int] = []
    seen: set[str] = set()
    index = 0
    for tag in tags:
        if tag == sep:
            index += 1
            seen.clear()
        elif tag in seen:
            if tag and tag != " " and (not candidates or candidates[-1] != index):
                candidates.append(index)
        else:
            seen.add(tag)
    return candidates

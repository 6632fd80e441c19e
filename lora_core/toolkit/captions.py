"""Caption text helpers shared by rules: tags, separators, caption style, normalisation.

A caption is either a tag list ("cybrpnk, neon city, rain, night") or a sentence ("a neon city
at night in the rain"). Tags are the pieces between separators; both ASCII and full-width
separators split tags, so a full-width comma cannot hide a duplicate.
"""

from __future__ import annotations

import itertools
import random
import re
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the rules module imports this toolkit
    from lora_core.rules import Corpus

__all__ = [
    "SEPARATORS",
    "STYLE_PREFIX",
    "TAG",
    "after_prefix",
    "caption_style",
    "caption_styles",
    "duplicate_tag_candidates",
    "near_duplicate_key",
    "normalise_tag",
    "tag_spans",
    "valid_text",
    "word_bags",
]

#: Characters that separate tags: ASCII comma, semicolon, pipe, and their full-width forms.
SEPARATORS = ",;|\uff0c\u3001\uff1b"
TAG = re.compile(f"[^{SEPARATORS}]+")
_SPACES = re.compile(r"\s+")


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with each lone surrogate (a byte that was not UTF-8, kept by `surrogateescape`:
    LK004 reports it) as U+FFFD, which is what a trainer decoding the file leniently reads.
    Tokenizers, reports and anything written for people take valid text only."""
    return text if text.isascii() or not _SURROGATE.search(text) else _SURROGATE.sub("\ufffd", text)


#: A `[style: ...]`-like prefix: a bracketed tag at the very start of a caption.
STYLE_PREFIX = re.compile(r"\A\s*(\[[^\[\]\n]{1,60}\])")


def after_prefix(caption: str) -> int:
    """Offset just after a leading `[...]` prefix and its space (0 without one): where a trigger
    goes, so that prefix and trigger together form the first tag."""
    match = STYLE_PREFIX.match(caption)
    if match is None:
        return 0
    end = match.end()
    return end + 1 if caption[end:end + 1] == " " else end


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
    """caption_style for many captions (counted with C-level maps: this runs over every caption)."""
    commas = map(str.count, captions, itertools.repeat(","))
    semicolons = map(str.count, captions, itertools.repeat(";"))
    pipes = map(str.count, captions, itertools.repeat("|"))
    spaces = map(str.count, captions, itertools.repeat(" "))
    out: list[str | None] = []
    append = out.append
    for caption, c, s, p, blanks in zip(captions, commas, semicolons, pipes, spaces):
        pieces = 1 + c + s + p if caption.isascii() else max(1, len(TAG.findall(caption)))
        words = blanks + 1  # approximate on purpose
        if not caption or caption.isspace():
            append(None)
        elif pieces >= 3 and words <= 3 * pieces:
            append("tags")
        elif (pieces <= 2 and words >= 4) or words > 4 * pieces:
            append("sentence")
        else:
            append(None)
    return out


_ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_KEY_SEPARATORS = re.compile(f"[{SEPARATORS}]")
# Articles, punctuation and underscores: what "differs only trivially" ignores.
_TRIVIAL = re.compile(rf"(?:\b(?:a|an|the)\b|[^\w{SEPARATORS}]|_)+")
_TRIVIAL_AND_SEPARATORS = re.compile(r"(?:\b(?:a|an|the)\b|\W|_)+")


def _scramble(seed: int) -> bytes:
    """A fixed pseudo-random byte permutation that keeps the boundary byte 0x1F in place."""
    others = [b for b in range(256) if b != 0x1F]
    shuffled = random.Random(seed).sample(others, len(others))
    table = dict(zip(others, shuffled))
    return bytes(0x1F if b == 0x1F else table[b] for b in range(256))


_SCRAMBLE_1 = _scramble(1)
_SCRAMBLE_2 = _scramble(2)
_PUNCT_TO_SPACE = bytes.maketrans(_ASCII_PUNCTUATION.encode(), b" " * len(_ASCII_PUNCTUATION))
_BLANKS = b" \t\r\n\x0b\x0c"
_ARTICLES_BYTES = re.compile(rb" (?:an?|the)(?= )")


def word_bags(corpus: Corpus) -> list[tuple[int, int, int]]:
    """For each caption, an order-independent fingerprint of its letters once articles,
    punctuation and blanks are removed: (length, two scrambled byte sums). Every pair of
    near-duplicates shares it; a few other pairs may too, and `near_duplicate_key` decides.
    Computed on the whole corpus as bytes, with C-level operations only."""
    boundary = b"\x1f"
    # Non-ASCII captions get unicode-aware cleaning first, so “neon” and "neon" agree.
    cleaned = [c if c.isascii() else _TRIVIAL_AND_SEPARATORS.sub(" ", c) for c in corpus.folded]
    data = " \x1f ".join(cleaned).encode("utf-8", "surrogateescape")
    if data.count(boundary) != len(cleaned) - 1 if cleaned else False:  # a caption holds \x1f
        return [_bag_slow(c) for c in cleaned]
    data = _ARTICLES_BYTES.sub(b"", b" " + data.translate(_PUNCT_TO_SPACE) + b" ")
    data = data.translate(None, _BLANKS)
    first = data.translate(_SCRAMBLE_1).split(boundary)
    second = data.translate(_SCRAMBLE_2).split(boundary)
    adler32 = zlib.adler32
    return [(len(a), adler32(a) & 0xFFFF, adler32(b) & 0xFFFF) for a, b in zip(first, second)]


def _byte_sum(data: bytes) -> int:
    """The sum of the bytes modulo 65521, in C: Adler-32's low half is 1 + that sum, and does not
    depend on the order of the bytes (about 2.5 times faster than sum()). `word_bags` inlines it."""
    return zlib.adler32(data) & 0xFFFF


def _bag_slow(caption: str) -> tuple[int, int, int]:
    data = caption.encode("utf-8", "surrogateescape")
    data = _ARTICLES_BYTES.sub(b"", b" " + data.translate(_PUNCT_TO_SPACE) + b" ").translate(None, _BLANKS)
    return len(data), _byte_sum(data.translate(_SCRAMBLE_1)), _byte_sum(data.translate(_SCRAMBLE_2))


def near_duplicate_key(caption: str) -> str:
    """Captions with the same key differ only in case, punctuation, spacing, articles, or (for
    tag lists) tag order."""
    cleaned = _TRIVIAL.sub(" ", caption.casefold())
    if caption_style(caption) == "tags":
        tags = [" ".join(t.split()) for t in _KEY_SEPARATORS.split(cleaned)]
        return "|".join(sorted(t for t in tags if t))
    return " ".join(_KEY_SEPARATORS.sub(" ", cleaned).split())


# The blanks normalise_tag folds (what `\\s` matches): the ASCII ones, then the wider ones.
_ASCII_BLANKS = bytes(c for c in range(128) if chr(c).isspace())
_WIDE_BLANK = re.compile(r"\s")
_ASCII_SEPARATORS_TO_COMMA = bytes.maketrans(b";|", b",,")
_WIDE_SEPARATOR = re.compile(f"[{SEPARATORS[3:]}]")


def _not_ascii_bytes(data: bytes) -> bool:
    return not data.isascii()


def duplicate_tag_candidates(corpus: Corpus) -> list[int]:
    """Indexes of captions that may repeat a tag (case- and spacing-insensitive); a superset,
    confirmed by the caller with tag_spans. Works on the casefolded corpus as UTF-8 bytes (several
    times faster than on a str holding any non-ASCII character) with every blank deleted, which
    can only merge tags that differ by spaces (more candidates, never fewer); one set() per
    caption, built by maps."""
    data, _ = corpus.folded_encoded()
    sep = corpus.sep.encode("utf-8", "surrogateescape")
    # One pass: `;` and `|` become `,`, ASCII blanks go.
    pieces = data.translate(_ASCII_SEPARATORS_TO_COMMA, _ASCII_BLANKS.replace(sep, b"")).split(sep)[1:-1]
    # Full-width separators, and no-break or ideographic spaces, must not hide a repeat either:
    # handled in the few non-ASCII captions only.
    for index in itertools.compress(itertools.count(), map(_not_ascii_bytes, pieces)):
        text = _WIDE_BLANK.sub("", pieces[index].decode("utf-8", "surrogateescape"))
        pieces[index] = _WIDE_SEPARATOR.sub(",", text).encode("utf-8", "surrogateescape")
    if len(pieces) != len(corpus.captions):  # pragma: no cover - the separator is never produced
        return list(range(len(corpus.captions)))
    # Fewer distinct tags than tags means a repeat (or empty tags: LK104). One caption's tags at a
    # time: keeping every caption's tag list alive costs 40 MB at 100,000 captions.
    return [i for i, piece in enumerate(pieces) if len(set(tags := piece.split(b","))) < len(tags)]

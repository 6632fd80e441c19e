"""Caption text helpers shared by rules: tags, separators, caption style, normalisation.

A caption is either a tag list ("cybrpnk, neon city, rain, night") or a sentence ("a neon city
at night in the rain"). Tags are the pieces between separators; both ASCII and full-width
separators split tags, so a full-width comma cannot hide a duplicate.
"""

from __future__ import annotations

import re

#: Characters that separate tags: ASCII comma, semicolon, pipe, and their full-width forms.
SEPARATORS = ",;|\uff0c\u3001\uff1b"
TAG = re.compile(f"[^{SEPARATORS}]+")
_WORD = re.compile(r"\w+")
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
    pieces = [p for p in TAG.findall(caption) if p.strip()]
    words = len(caption.split())
    if not pieces or words == 0:
        return None
    per_piece = words / len(pieces)
    if len(pieces) >= 3 and per_piece <= 3:
        return "tags"
    if (len(pieces) <= 2 and words >= 4) or per_piece > 4:
        return "sentence"
    return None


def near_duplicate_key(caption: str) -> tuple[str, ...]:
    """Captions with the same key differ only in case, punctuation, spacing, articles, or (for
    tag lists) tag order."""
    if caption_style(caption) == "tags":
        tags = (" ".join(w for w in _WORD.findall(t.casefold()) if w not in STOPWORDS) for t in TAG.findall(caption))
        return tuple(sorted(t for t in tags if t))
    return tuple(w for w in _WORD.findall(caption.casefold()) if w not in STOPWORDS)

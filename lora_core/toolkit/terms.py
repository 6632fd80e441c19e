"""Matching configured terms in captions: style words, vague words, person words, triggers.

Terms match case-insensitively (unless asked otherwise) and as whole words; a multi-word term
matches as a phrase, with any run of spaces or tabs between its words. A no-break space or a
zero-width character does *not* join words here: trainers' tokenizers do not see "cyber punk" in
`cyber\u00a0punk` either. `near_miss` explains such cases, so a message can say why a term that
looks present does not count.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

__all__ = [
    "Terms",
    "term_regex",
]

_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"
_ODD_SPACES = "\u00a0\u202f\u2007\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2008\u2009\u200a\u3000"
_LOOSEN = str.maketrans({**{c: None for c in _INVISIBLE}, **{c: " " for c in _ODD_SPACES}})


def term_regex(term: str) -> str:
    """`term` as a whole word (or phrase). The regex starts with the term's first word and checks
    the character before it with a lookbehind placed after that word: a pattern that starts with
    a literal lets `re` skip ahead to where the literal occurs (2-3 times faster over captions
    than a leading `(?<!\\w)`, with the same matches)."""
    first, *rest = (re.escape(w) for w in term.split())
    return first + rf"(?<!\w{first})" + "".join(r"[ \t]+" + w for w in rest) + r"(?!\w)"


class Terms:
    """A compiled set of terms; empty sets match nothing."""

    def __init__(self, terms: Iterable[str], case_sensitive: bool = False) -> None:
        self.terms = [t.strip() for t in terms if t and t.strip()]
        self.case_sensitive = case_sensitive
        flags = 0 if case_sensitive else re.IGNORECASE
        # Longest first, so "oil painting" wins over "oil" where both are configured.
        ordered = sorted(self.terms, key=len, reverse=True)
        self.pattern = re.compile("|".join(f"(?:{term_regex(t)})" for t in ordered), flags) if ordered else None
        self._by_fold = {t.casefold(): t for t in self.terms}

    def __bool__(self) -> bool:
        return self.pattern is not None

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self.pattern is not None else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.pattern.finditer(text) if self.pattern is not None else iter(())

    def canonical(self, matched: str) -> str:
        """The configured spelling of a matched text."""
        return self._by_fold.get(" ".join(matched.split()).casefold(), matched)

    def near_miss(self, text: str) -> str | None:
        """Why a term that is almost in `text` does not count (invisible character, odd space,
        letter case, full-width form), or None when no term is even nearly there."""
        if self.pattern is None:
            return None
        loose = unicodedata.normalize("NFKC", text.translate(_LOOSEN))
        loose_match = re.search(self.pattern.pattern, loose, re.IGNORECASE)
        if loose_match is None:
            return None
        found = loose_match.group()
        invisible = sorted({c for c in text if c in _INVISIBLE})
        spaces = sorted({c for c in text if c in _ODD_SPACES})
        if invisible:
            names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '').lower()}" for c in invisible)
            return f"`{found}` is written with an invisible character ({names}) inside it"
        if spaces:
            names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '').lower()}" for c in spaces)
            return f"`{found}` is written with a non-standard space ({names})"
        if loose != text:
            return f"`{found}` is written with full-width or compatibility characters"
        if self.case_sensitive:
            return f"`{found}` differs in letter case from `{self.canonical(found)}`"
        return None

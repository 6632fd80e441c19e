"""Caption templates: a pattern of literal text and `{slot}` placeholders, matched against captions.

    >>> template = Template.parse("{style} {subject} with {features}, {lighting}")
    >>> match = template.match("watercolor fox with red fur, soft light")
    >>> template.slot_value(match, "subject")[0]
    'fox'
    >>> template.explain("watercolor fox, soft light")
    'missing the literal `with` after {subject}'

Literals match ignoring case, with flexible blanks around separators. Used by the template rules
(LK4xx) and by `lorakit caption --template`, which fills the slots by asking questions.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

__all__ = ["Piece", "Template", "TemplateMatch"]

_SLOT = re.compile(r"\{([A-Za-z_][\w-]*)\}")


@dataclass(frozen=True)
class Piece:
    """One part of a template: literal text, or a slot's name."""

    text: str  # a literal, or a slot name
    is_slot: bool


_GAP = re.compile(r"[\s,;|]+")


def _literal_regex(text: str) -> str:
    """Literal text with flexible blanks: separators match with any blanks around them, a run of
    spaces matches one or more blanks, everything else matches itself (ignoring case). A gap of
    several separators (`,  ,`) allows blanks once between each two, never two quantifiers side by
    side, so a long run of blanks is never re-split (that was quadratic)."""
    out = []
    position = 0
    for gap in _GAP.finditer(text):
        out.append(re.escape(text[position:gap.start()]))
        separators = [char for char in gap.group() if not char.isspace()]
        if separators:
            out.append(r"\s*" + r"\s*".join(re.escape(char) for char in separators) + r"\s*")
        else:
            out.append(r"\s+")
        position = gap.end()
    out.append(re.escape(text[position:]))
    return "".join(out)


class TemplateMatch:
    """Where each slot of a template lies in a caption that follows it (as `Template.match` found it)."""

    def __init__(self, caption: str, spans: dict[str, tuple[int, int]] | None = None,
                 found: re.Match[str] | None = None, groups: dict[str, str] | None = None) -> None:
        self.caption = caption
        self._spans = spans
        self._found = found  # the regex's match, read only when a slot is asked for
        self._groups = groups or {}

    @property
    def spans(self) -> dict[str, tuple[int, int]]:
        if self._spans is None:
            found = self._found
            self._spans = {slot: found.span(group) for slot, group in self._groups.items()} if found else {}
        return self._spans

    def group(self, slot: str) -> str:
        """The slot's text as it stands in the caption (blanks around it included)."""
        start, end = self.spans[slot]
        return self.caption[start:end]

    def span(self, slot: str) -> tuple[int, int]:
        """(start, end) of the slot in the caption."""
        return self.spans[slot]


@dataclass(frozen=True)
class _Literal:
    """A literal piece, compiled for a linear search: `core` starts at the literal's first
    non-blank text; the blanks before it are checked by hand (`blank_before`: "" none, "*" any
    number, "+" at least one), so a search never re-scans a run of blanks from every start."""

    core: re.Pattern[str] | None  # None: the literal is only blanks (`{a} {b}`)
    blank_before: str
    at_end: re.Pattern[str] | None  # core followed by blanks to the end of the caption


def _compile_literal(text: str) -> _Literal:
    body = _literal_regex(text)
    blank_before = ""
    for lead, kind in ((r"\s+", "+"), (r"\s*", "*")):
        if body.startswith(lead):
            body, blank_before = body[len(lead):], kind
            break
    flags = re.IGNORECASE | re.DOTALL
    if not body:  # blanks only: the slots on both sides are split at the first run of blanks
        return _Literal(None, "", None)
    return _Literal(re.compile(body, flags), blank_before, re.compile(body + r"\s*\Z", flags))


class Template:
    """A parsed pattern: alternating literals and slots.

    Matching is linear in the caption's length for every pattern (no regex backtracking over the
    slots): each literal is placed at its leftmost possible position after the previous one, which
    leaves the most room for the rest, and a final literal is anchored at the caption's end. The
    slots take what lies between, as a lazy `{slot}` (`.+?`, the last slot `.+`) would."""

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces
        # Blanks before the first literal and after the last one are free (a caption's own
        # leading and trailing blanks never decide whether it follows the template).
        last = len(pieces) - 1
        self._literals = {index: _compile_literal(_free_ends(piece.text, index, last))
                          for index, piece in enumerate(pieces) if not piece.is_slot}
        self._regex = _atomic_regex(pieces) if _HAS_ATOMIC_GROUPS else None
        self._groups = {piece.text: f"s{index}" for index, piece in enumerate(pieces) if piece.is_slot}

    @classmethod
    def parse(cls, pattern: str) -> Template:
        pieces: list[Piece] = []
        position = 0
        for match in _SLOT.finditer(pattern):
            if match.start() > position:
                pieces.append(Piece(pattern[position:match.start()], False))
            elif pieces and pieces[-1].is_slot:
                raise ValueError(f"slots {{{pieces[-1].text}}} and {{{match.group(1)}}} need literal text between them")
            pieces.append(Piece(match.group(1), True))
            position = match.end()
        if position < len(pattern):
            pieces.append(Piece(pattern[position:], False))
        if not any(p.is_slot for p in pieces):
            raise ValueError("the pattern has no {slot}")
        if len({p.text for p in pieces if p.is_slot}) != sum(p.is_slot for p in pieces):
            raise ValueError("a slot name is used twice")
        return cls(pieces)

    def match(self, caption: str) -> TemplateMatch | None:
        """Where the slots lie, when the whole caption follows the template; else None."""
        if self._regex is not None:
            found = self._regex.match(caption)
            return None if found is None else TemplateMatch(caption, found=found, groups=self._groups)
        spans, failed_at = self._place(caption, whole=True)
        return TemplateMatch(caption, spans) if failed_at is None else None

    def follows(self, caption: str) -> bool:
        """Whether the whole caption follows the template (`match` without building the slots)."""
        if self._regex is not None:
            return self._regex.match(caption) is not None
        return self._place(caption, whole=True)[1] is None

    def explain(self, caption: str) -> str:
        """Which slot or literal is missing: the first piece after which the caption stops fitting."""
        _, failed_at = self._place(caption, whole=False)
        if failed_at is None:
            return "text after the last part of the template"
        piece = self.pieces[failed_at]
        after = self.pieces[failed_at - 1] if failed_at >= 1 else None
        where = f" after {_show(after)}" if after is not None else " at the start"
        if piece.is_slot:
            return f"slot {{{piece.text}}} is empty{where}"
        return f"missing the literal `{piece.text.strip() or piece.text}`{where}"

    def slot_value(self, match: TemplateMatch, slot: str) -> tuple[str, tuple[int, int]]:
        return match.group(slot).strip(), match.span(slot)

    def _place(self, caption: str, whole: bool) -> tuple[dict[str, tuple[int, int]], int | None]:
        """Place the pieces left to right. `whole`: the caption must end with the template (a final
        literal is then anchored at the end first, so the middle pieces are placed before it).
        Returns the slot spans and the index of the first piece that cannot be placed (None: all)."""
        pieces, size = self.pieces, len(caption)
        position = len(caption) - len(caption.lstrip())
        limit = size
        last = len(pieces) - 1
        final_literal: int | None = None  # where a literal that ends the template starts its core
        if whole and not pieces[last].is_slot and last > 0:
            final_literal = self._final_literal(caption, self._literals[last], position)
            if final_literal is None:
                return {}, last
            limit = final_literal
        spans: dict[str, tuple[int, int]] = {}
        slot_from = -1  # where the open slot starts (-1: no slot open)
        first_text = -1  # the open slot's first non-blank character: a slot is never blank
        for index, piece in enumerate(pieces):
            if piece.is_slot:
                slot_from, first_text = position, _first_text(caption, position, limit)
                if first_text < 0:
                    return spans, index
                if index == last:
                    spans[piece.text] = (position, size)
                    return spans, None
                continue
            literal = self._literals[index]
            if index == last and final_literal is not None:
                if not _fits(caption, first_text, final_literal, literal.blank_before):
                    return spans, index
                spans[pieces[index - 1].text] = (slot_from, _slot_end(caption, slot_from, final_literal,
                                                                      literal.blank_before))
                return spans, None
            if slot_from < 0:  # a literal at the start of the caption
                found = _match_at(caption, literal, position)
                if found is None:
                    return spans, index
                position = found
                continue
            placed = _search(caption, literal, first_text, limit)
            if placed is None:
                return spans, index
            core_start, after = placed
            spans[pieces[index - 1].text] = (slot_from, _slot_end(caption, slot_from, core_start, literal.blank_before))
            position, slot_from = after, -1
        if whole and caption[position:].strip():
            return spans, len(pieces)  # text after the last literal
        return spans, None

    @staticmethod
    def _final_literal(caption: str, literal: _Literal, position: int) -> int | None:
        """Where a literal that ends the template starts its core, anchored at the caption's end."""
        if literal.at_end is None:  # a trailing blank literal is absorbed by the end's blanks
            stripped = len(caption.rstrip())
            return stripped if stripped > position else None
        found = literal.at_end.search(caption, position + 1)
        return None if found is None else found.start()


# Python 3.11's atomic groups let one regex place the literals the way `_place` does (leftmost,
# never revisited), at C speed: `(?>slot literal)` commits to the first place the literal fits.
_HAS_ATOMIC_GROUPS = sys.version_info >= (3, 11)


def _atomic_regex(pieces: list[Piece]) -> re.Pattern[str]:
    """The template as one regex with the same answers as `_place(whole=True)`: a slot holds a
    non-blank character; a middle literal is placed leftmost after it, atomically; a literal that
    ends the template is anchored at the caption's end; leading and trailing blanks are free.
    Runs of blanks are possessive and a slot ends on a non-blank character, so no run of blanks
    is ever re-split: the match stays linear in the caption."""
    parts = [r"\A\s*+"]
    last = len(pieces) - 1
    for index, piece in enumerate(pieces):
        if piece.is_slot:
            if index == last:
                parts.append(rf"\s*+(?P<s{index}>\S.*)\Z")
            continue
        text = _free_ends(piece.text, index, last)
        body = _possessive(_literal_regex(text)) if text else ""
        if index == 0:
            parts.append(body)
            continue
        if not body.startswith("\\s"):
            body = r"\s*+" + body  # blanks between a slot and a literal that does not ask for them
        slot = rf"\s*+(?P<s{index - 1}>\S(?:.*?\S)??)"
        if index == last:
            parts.append(rf"{slot}{body}\s*+\Z")
        else:
            parts.append(rf"(?>{slot}{body})")
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _possessive(regex: str) -> str:
    return regex.replace(r"\s*", r"\s*+").replace(r"\s+", r"\s++")


def _free_ends(text: str, index: int, last: int) -> str:
    """A literal's text with the blanks the caption's ends make free: before the first piece,
    after the last one."""
    if index == 0:
        text = text.lstrip()
    if index == last:
        text = text.rstrip()
    return text


def _first_text(caption: str, start: int, limit: int) -> int:
    """The first non-blank character in caption[start:limit], or -1."""
    for index in range(start, limit):
        if not caption[index].isspace():
            return index
    return -1


def _fits(caption: str, first_text: int, core_start: int, blank_before: str) -> bool:
    """Can a slot whose first non-blank character is at `first_text`, and the literal's leading
    blanks, end where the literal's core starts?"""
    if blank_before == "+":
        return first_text < core_start - 1 and caption[core_start - 1].isspace()
    return first_text < core_start


def _slot_end(caption: str, slot_from: int, core_start: int, blank_before: str) -> int:
    """Where a lazy slot ends before a literal: its trailing blanks go to the literal."""
    if not blank_before:
        return core_start
    return len(caption[slot_from:core_start].rstrip()) + slot_from


def _match_at(caption: str, literal: _Literal, position: int) -> int | None:
    """A literal at the start (after the caption's leading blanks): where it ends, or None."""
    if literal.core is None:  # blanks only, and the caption's leading blanks are free
        return position
    found = literal.core.match(caption, position)
    if found is None:
        return None
    return found.end()


def _search(caption: str, literal: _Literal, first_text: int, limit: int) -> tuple[int, int] | None:
    """The leftmost place of a literal after a slot whose first non-blank character is at
    `first_text`, with its core starting before `limit`: (core start, end), or None. Each search
    resumes after the last refused place, so the whole search is linear in the caption."""
    if literal.core is None:  # blanks only: the first run of blanks inside the text
        for index in range(first_text + 1, limit):
            if caption[index].isspace():
                end = index
                while end < len(caption) and caption[end].isspace():
                    end += 1
                return index, end
        return None
    start = first_text + 1
    while start < limit:
        found = literal.core.search(caption, start, len(caption))
        if found is None or found.start() >= limit:
            return None
        if _fits(caption, first_text, found.start(), literal.blank_before):
            return found.start(), found.end()
        start = found.start() + 1
    return None


def _show(piece: Piece) -> str:
    return f"{{{piece.text}}}" if piece.is_slot else f"`{piece.text.strip() or piece.text}`"

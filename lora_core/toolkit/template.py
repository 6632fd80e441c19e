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
from dataclasses import dataclass

__all__ = ["Piece", "Template"]

_SLOT = re.compile(r"\{([A-Za-z_][\w-]*)\}")


@dataclass(frozen=True)
class Piece:
    """One part of a template: literal text, or a slot's name."""

    text: str  # a literal, or a slot name
    is_slot: bool


_BLANKS_OR_SEPARATOR = re.compile(r"(\s*[,;|]\s*|\s+)")


def _literal_regex(text: str) -> str:
    """Literal text with flexible blanks: a separator matches with any blanks around it, a run of
    spaces matches one or more blanks, everything else matches itself (ignoring case)."""
    out = []
    for part in _BLANKS_OR_SEPARATOR.split(text):
        if not part:
            continue
        if part.isspace():
            out.append(r"\s+")
        elif part.strip() in (",", ";", "|"):
            out.append(r"\s*" + re.escape(part.strip()) + r"\s*")
        else:
            out.append(re.escape(part))
    return "".join(out)


class Template:
    """A parsed pattern: alternating literals and slots, compiled to one anchored regex."""

    def __init__(self, pieces: list[Piece]) -> None:
        self.pieces = pieces
        self.regex = re.compile(self._regex(len(pieces)) + r"\s*\Z", re.IGNORECASE | re.DOTALL)

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

    def _regex(self, count: int) -> str:
        parts = [r"\A\s*"]
        for index, piece in enumerate(self.pieces[:count]):
            if piece.is_slot:
                last = index == len(self.pieces) - 1
                parts.append(f"(?P<{_group(piece.text)}>.+)" if last else f"(?P<{_group(piece.text)}>.+?)")
            else:
                parts.append(_literal_regex(piece.text))
        return "".join(parts)

    def match(self, caption: str) -> re.Match[str] | None:
        return self.regex.match(caption)

    def explain(self, caption: str) -> str:
        """Which slot or literal is missing: the first piece after which the caption stops fitting."""
        for count in range(1, len(self.pieces) + 1):
            prefix = re.compile(self._regex(count), re.IGNORECASE | re.DOTALL)
            if prefix.match(caption):
                continue
            piece = self.pieces[count - 1]
            after = self.pieces[count - 2] if count >= 2 else None
            where = f" after {_show(after)}" if after is not None else " at the start"
            if piece.is_slot:
                return f"slot {{{piece.text}}} is empty{where}"
            return f"missing the literal `{piece.text.strip() or piece.text}`{where}"
        return "text after the last part of the template"

    def slot_value(self, match: re.Match[str], slot: str) -> tuple[str, tuple[int, int]]:
        group = _group(slot)
        return match.group(group).strip(), match.span(group)


def _group(slot: str) -> str:
    return "slot_" + slot.replace("-", "_")


def _show(piece: Piece) -> str:
    return f"{{{piece.text}}}" if piece.is_slot else f"`{piece.text.strip() or piece.text}`"

"""The form of a caption: a tag list, a list of phrases, or prose; and the form of a whole set.

    >>> caption_form("tk, 1girl, solo, blue_hair, maid, full_body")
    'tags'
    >>> caption_form("a woman sitting on a bench, in a park, at sunset, soft light")
    'phrases'
    >>> caption_form("A young woman sits on a bench. Behind her, the park fades into haze.")
    'prose'
    >>> caption_form("a room with red curtains and a red rug")
    'prose'

Which checks apply depends on it: tag syntax (separators, repeated tags, tag position) means
something in a tag list, where trainers split on the separator and shuffle the pieces; in prose a
semicolon, an em dash or a repeated word is ordinary writing. The three forms:

- **tags**: short pieces between separators, few function words (`blue_hair, smile, night`);
  booru tags with underscores count as tags whatever their length;
- **phrases**: comma-separated pieces that read as phrases (`a woman sitting on a bench, in a
  park`), no sentence ends inside;
- **prose**: sentences (a sentence end inside, or a single piece of four or more words).

Borderline captions (a short one, a mix) are None on their own; `settled_forms` gives them the
form of their set, so a uniform set never flips caption by caption. The classification is
counted with C-level string methods first; the function words are counted only for captions the
counts cannot decide.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMS", "SetForms", "caption_form", "caption_forms", "forms_of", "majority_form", "settled_forms"]

#: The forms, from most to least structured.
FORMS = ("tags", "phrases", "prose")

_FUNCTION_WORD_TEXT = (
    "a an the of with in on at to from by for and or but while as into onto over under behind near beside "
    "between through across against around along above below is are was were be being been has have had "
    "her his their its she he they it this that these those which who whose where when there one some"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_TEXT.split())
_WORD = re.compile(r"[A-Za-z']+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]?\s+(?=[A-Z\[\"(])")


def caption_form(caption: str) -> str | None:
    """"tags", "phrases", "prose", or None when the caption alone cannot tell (short, or mixed)."""
    return caption_forms([caption])[0]


def caption_forms(captions: Sequence[str]) -> list[str | None]:
    """caption_form for many captions."""
    return [_form(caption) for caption in captions]


def _form(caption: str) -> str | None:
    text = caption.strip()
    if not text:
        return None
    pieces = 1 + text.count(",") + text.count(";") + text.count("|") + text.count("\uff0c") + text.count("\u3001")
    words = text.count(" ") + 1
    if "_" in text and text.count("_") * 3 >= pieces:
        return "tags"  # WD14 / booru tags (`long_hair`, `looking_at_viewer`)
    per_piece = words / pieces
    if text.endswith(".") and pieces >= 2:
        # A tag list never ends with a full stop: a list written as a sentence ("... and lantern lights.")
        return "prose" if per_piece >= 5 else "phrases"
    if pieces >= 3 and per_piece <= 2.0:
        return "tags"
    if _SENTENCE_END.search(text) and words >= 8:
        return "prose"  # two sentences or more
    if pieces == 1:
        return "prose" if words >= 4 else None
    found = [w.lower() for w in _WORD.findall(text)]
    function = sum(1 for w in found if w in _FUNCTION_WORDS) / max(1, len(found))
    if per_piece >= 8:
        return "prose"  # clauses joined by commas, as sentences are
    if pieces >= 3 and per_piece <= 3.0 and function < 0.12:
        return "tags"
    if function >= 0.12:
        return "phrases"
    return "tags" if pieces >= 3 else None


def majority_form(forms: Iterable[str | None]) -> tuple[str, int, int] | None:
    """(the most common form, captions of that form, captions classified), or None."""
    counted = Counter(f for f in forms if f)
    if not counted:
        return None
    form, count = counted.most_common(1)[0]
    return form, count, sum(counted.values())


def settled_forms(forms: Sequence[str | None], groups: Iterable[Sequence[int]] | None = None,
                  share: float = 0.8) -> list[str | None]:
    """Each caption's form, with the borderline ones (None) and the near neighbours of a set
    that is uniform (at least `share` of its classified captions in one form) given the set's
    form: in a set of phrase lists, a caption of three short phrases is a phrase list too, not a
    tag list among phrase lists. Only `tags` against `prose` stays a difference: those two are
    never neighbours. `groups`: lists of caption indexes judged apart (kohya concept folders)."""
    settled = list(forms)
    for indexes in groups if groups is not None else [range(len(forms))]:
        found = majority_form(forms[i] for i in indexes)
        for i in indexes:
            settled[i] = _settle(forms[i], found, share)
    return settled


def _settle(own: str | None, found: tuple[str, int, int] | None, share: float) -> str | None:
    """A caption's form given its set's (form, count, classified): the set's form for a
    borderline caption, or for a neighbour form in a uniform set; tags and prose stay apart."""
    if found is None:
        return own
    form, count, classified = found
    uniform = count >= share * classified
    if own is None or (uniform and own != form and {own, form} != {"tags", "prose"}):
        return form
    return own


class SetForms:
    """Each caption's settled form, computed only for the captions a rule asks about: a rule
    that looks at the few captions holding a `;` classifies those few, not the whole set. The
    set's form (per kohya concept folder) comes from a sample of up to 1,000 of its captions."""

    def __init__(self, captions: Sequence[str], groups: Sequence[Sequence[int]], share: float = 0.8) -> None:
        self._captions = captions
        self._share = share
        self._group_of: dict[int, int] = {}
        self._groups = groups
        if len(groups) > 1:  # one group: every caption is in group 0 (the default below)
            for position, indexes in enumerate(groups):
                for index in indexes:
                    self._group_of[index] = position
        self._majority: dict[int, tuple[str, int, int] | None] = {}
        self._cache: dict[int, str | None] = {}

    def set_form(self, index: int) -> tuple[str, int, int] | None:
        """(form, count, classified) of the caption's group, from a sample."""
        position = self._group_of.get(index, 0)
        if position not in self._majority:
            indexes = self._groups[position] if self._groups else []
            step = max(1, len(indexes) // 1000)
            sample = [indexes[i] for i in range(0, len(indexes), step)]
            self._majority[position] = majority_form(_form(self._captions[i]) for i in sample)
        return self._majority[position]

    def __getitem__(self, index: int) -> str | None:
        if index not in self._cache:
            self._cache[index] = _settle(_form(self._captions[index]), self.set_form(index), self._share)
        return self._cache[index]


def forms_of(ctx: Any) -> SetForms:
    """The settled forms of a lint context's captions (`ctx.corpus`), shared by the rules of a run;
    each kohya concept folder is its own set."""

    def compute() -> SetForms:
        concepts = [record.concept for record in ctx.corpus.records]
        if not any(concepts):  # one set (no kohya concept folders): no grouping pass
            return SetForms(ctx.corpus.captions, [range(len(concepts))])
        groups: dict[Any, list[int]] = {}
        for index, concept in enumerate(concepts):
            groups.setdefault(concept, []).append(index)
        return SetForms(ctx.corpus.captions, list(groups.values()))

    found: SetForms = ctx.memo("settled-caption-forms", compute)
    return found

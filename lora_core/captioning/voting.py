"""Choosing one caption per image among several captioners' drafts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lora_core.captioning.items import ImageItem

_WORD = re.compile(r"\w+")

#: How several captioners' drafts become one caption: the draft most shared with the others, the
#: draft CLIP scores closest to the image, or every draft joined (a tagger's tags and a VLM's sentence).
VOTES = ("consensus", "clip", "join")


def consensus(candidates: Sequence[str]) -> tuple[int, list[float]]:
    """Index of the candidate sharing the most words with the others, and every candidate's score
    (the number of its distinct words found in each other candidate, summed). Ties keep the
    earlier captioner."""
    words = [set(_WORD.findall(c.casefold())) for c in candidates]
    scores = [float(sum(len(mine & other) for j, other in enumerate(words) if j != i))
              for i, mine in enumerate(words)]
    best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    return best, scores


def clip_vote(scorer: Any, items: list[ImageItem], candidates: list[list[str]]) -> list[list[float]]:
    """Each candidate's CLIP similarity to its image."""
    return scorer.score_candidates([item.load() for item in items], candidates)


def best_score(scores: list[float]) -> tuple[int, list[float]]:
    """The index of the highest score (ties keep the earlier captioner) and the scores."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i)), scores


def join_captions(parts: Sequence[str]) -> str:
    """Every captioner's draft in one caption, in the order the captioners were given: `1girl,
    red hair, A woman stands in the rain.` A draft equal to an earlier one is not repeated;
    a draft ending a sentence is followed by a space, any other by a comma."""
    joined = ""
    seen: set[str] = set()
    for part in parts:
        part = part.strip().strip(",").strip()
        if not part or part.casefold() in seen:
            continue
        seen.add(part.casefold())
        joined += ("" if not joined else " " if joined.endswith((".", "!", "?")) else ", ") + part
    return joined

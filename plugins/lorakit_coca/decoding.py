"""Text decoding for models that give next-token logits: greedy, beam search, top-k and top-p.

open_clip's own CoCa `generate()` imports beam-search classes that transformers 5 removed, so it
refuses to run at all; this module is the small replacement. It works on any `step(tokens, rows)`
that returns the logits of the next token for each row of `tokens` (rows index the batch's
images), so it is tested on its own with a hand-made step function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

METHODS = ("beam", "greedy", "top-k", "top-p")


@dataclass(frozen=True)
class DecodeSettings:
    method: str = "beam"
    max_new_tokens: int = 30
    min_new_tokens: int = 3
    num_beams: int = 4
    length_penalty: float = 1.0  # beam scores are divided by length ** length_penalty
    top_k: int = 40
    top_p: float = 0.9
    temperature: float = 1.0
    seed: int | None = None  # sampling: the same seed gives the same captions

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"decoding {self.method!r} is not one of {', '.join(METHODS)}")
        if self.max_new_tokens < 1 or self.num_beams < 1 or self.top_k < 1 or self.temperature <= 0:
            raise ValueError("max_new_tokens, num_beams and top_k must be at least 1, temperature above 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


Step = Callable[[Any, Any], Any]  # (tokens [n, t] long, rows [n] long) -> logits [n, vocab]


def decode(step: Step, batch: int, start: int, end: int, settings: DecodeSettings, device: Any = "cpu",
           ) -> list[list[int]]:
    """Generated token ids per image, without the start token and without the end token."""
    if settings.method == "beam" and settings.num_beams > 1:
        return _beam_search(step, batch, start, end, settings, device)
    return _sample(step, batch, start, end, settings, device)


def _forbid_end(logits: Any, end: int, produced: int, settings: DecodeSettings) -> Any:
    if produced < settings.min_new_tokens:
        logits[:, end] = float("-inf")
    return logits


def _sample(step: Step, batch: int, start: int, end: int, settings: DecodeSettings, device: Any) -> list[list[int]]:
    import torch

    generator = None
    if settings.seed is not None:
        generator = torch.Generator(device=device).manual_seed(settings.seed)
    tokens = torch.full((batch, 1), start, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    for produced in range(settings.max_new_tokens):
        rows = (~finished).nonzero().flatten()
        logits = _forbid_end(step(tokens[rows], rows).float(), end, produced, settings)
        if settings.method in ("greedy", "beam"):  # beam with one beam is greedy
            chosen = logits.argmax(-1)
        else:
            probabilities = torch.softmax(_filter(logits / settings.temperature, settings), -1)
            chosen = torch.multinomial(probabilities, 1, generator=generator).flatten()
        column = torch.full((batch,), end, dtype=torch.long, device=device)
        column[rows] = chosen
        tokens = torch.cat([tokens, column[:, None]], 1)
        for row, token in zip(rows.tolist(), chosen.tolist()):
            if token == end:
                finished[row] = True
            else:
                outputs[row].append(token)
        if bool(finished.all()):
            break
    return outputs


def _filter(logits: Any, settings: DecodeSettings) -> Any:
    """Keep the top-k tokens (top-k) or the smallest set holding top_p of the mass (top-p)."""
    import torch

    if settings.method == "top-k":
        k = min(settings.top_k, logits.shape[-1])
        threshold = logits.topk(k, -1).values[:, -1:]
        return logits.masked_fill(logits < threshold, float("-inf"))
    ordered, order = logits.sort(-1, descending=True)
    mass = torch.softmax(ordered, -1).cumsum(-1)
    drop = mass - torch.softmax(ordered, -1) >= settings.top_p  # the token that crosses top_p stays
    ordered = ordered.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, ordered)


def _beam_search(step: Step, batch: int, start: int, end: int, settings: DecodeSettings, device: Any,
                 ) -> list[list[int]]:
    import torch

    beams = settings.num_beams
    tokens = torch.full((batch * beams, 1), start, dtype=torch.long, device=device)
    scores = torch.full((batch, beams), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: only one may expand at the first step
    rows = torch.arange(batch, device=device).repeat_interleave(beams)
    done: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]

    def normalised(score: float, length: int) -> float:
        return score / (max(length, 1) ** settings.length_penalty)

    for produced in range(settings.max_new_tokens):
        logits = _forbid_end(step(tokens, rows).float(), end, produced, settings)
        vocabulary = logits.shape[-1]
        candidates = (scores.view(-1, 1) + torch.log_softmax(logits, -1)).view(batch, beams * vocabulary)
        top_scores, top_index = candidates.topk(2 * beams, -1)
        next_tokens, next_scores, parents = [], [], []
        for image in range(batch):
            kept = 0
            for rank, (score, index) in enumerate(zip(top_scores[image].tolist(), top_index[image].tolist())):
                parent, token = divmod(index, vocabulary)
                source = image * beams + parent
                if score == float("-inf"):
                    break
                if token == end:
                    if rank < beams:  # an ending only counts when it ranks among the live beams
                        history = tokens[source, 1:].tolist()
                        done[image].append((normalised(score, len(history) + 1), history))
                    continue
                if kept < beams:
                    next_tokens.append(token)
                    next_scores.append(score)
                    parents.append(source)
                    kept += 1
            while kept < beams:  # fewer live candidates than beams: pad with dead ones
                next_tokens.append(end)
                next_scores.append(float("-inf"))
                parents.append(image * beams)
                kept += 1
        index = torch.tensor(parents, device=device)
        tokens = torch.cat([tokens[index], torch.tensor(next_tokens, device=device)[:, None]], 1)
        scores = torch.tensor(next_scores, device=device).view(batch, beams)
        if all(len(done[i]) >= beams and max(h[0] for h in done[i]) >= normalised(float(scores[i].max()),
                                                                                   produced + 1)
               for i in range(batch)):
            break  # no live beam can still beat a finished caption
    results = []
    for image in range(batch):
        hypotheses = list(done[image])
        for beam in range(beams):
            score = float(scores[image, beam])
            if score > float("-inf"):
                history = tokens[image * beams + beam, 1:].tolist()
                hypotheses.append((normalised(score, len(history)), history))
        best = max(hypotheses, key=lambda h: h[0]) if hypotheses else (0.0, [])
        results.append(best[1])
    return results

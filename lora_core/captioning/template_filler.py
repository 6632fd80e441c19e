"""`lorakit caption --template`: filling `[template] pattern` slots by asking questions."""

from __future__ import annotations

from collections.abc import Sequence

from lora_core.captioning.voting import _WORD
from lora_core.config import Config
from lora_core.errors import ConfigError


class TemplateFiller:
    """Fills `[template] pattern` slots by asking a question-answering captioner one question per
    slot; a slot with a vocabulary in `[template] slots` gets a multiple-choice question and the
    answer is mapped onto the vocabulary."""

    def __init__(self, config: Config) -> None:
        from lora_core.toolkit.template import Template

        section = config.section("template")
        pattern = section.get("pattern", "")
        if not pattern:
            raise ConfigError("--template needs `[template] pattern` in lorakit.toml")
        self.template = Template.parse(pattern)
        self.vocabulary: dict[str, list[str]] = dict(section.get("slots", {}))
        custom: dict[str, str] = dict(section.get("questions", {}))
        self.slots = [piece.text for piece in self.template.pieces if piece.is_slot]
        self.questions = [custom.get(slot) or self.default_question(slot) for slot in self.slots]

    def default_question(self, slot: str) -> str:
        words = slot.replace("_", " ").replace("-", " ")
        choices = self.vocabulary.get(slot)
        if choices:
            listed = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0]
            return f"Question: which {words} does this picture show: {listed}? Answer:"
        return f"Question: what is the {words} in this picture? Answer:"

    def choose(self, slot: str, answer: str) -> str:
        answer = answer.strip().strip(".,;:!?").strip()
        choices = self.vocabulary.get(slot)
        if not choices:
            return answer
        folded = answer.casefold()
        for choice in choices:
            if choice.casefold() in folded:
                return choice
        words = set(_WORD.findall(folded))
        overlap = [(len(words & set(_WORD.findall(c.casefold()))), -i) for i, c in enumerate(choices)]
        best, negative_index = max(overlap)
        return choices[-negative_index] if best else answer  # no overlap: keep the answer, lint LK402 flags it

    def fill(self, answers: Sequence[str]) -> str:
        values = dict(zip(self.slots, answers))
        return "".join(self.choose(p.text, values[p.text]) if p.is_slot else p.text for p in self.template.pieces)

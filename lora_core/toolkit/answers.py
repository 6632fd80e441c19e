"""Cleaning what a chat model answers into a caption: chat models wrap it ("Sure! Here is a caption
for the image: ..."), quote it, fence it, think aloud before it (`<think>...</think>`) and offer
more help after it. Only wrappers are removed; the caption's own words are never rewritten.
"""

from __future__ import annotations

import re

__all__ = ["clean_answer"]

_THINKING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_UNCLOSED_THINKING = re.compile(r"^\s*<(think|thinking|reasoning)>.*", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
# "Sure! Here is a caption for the image:", "Here's a detailed description:", "Caption:", "Tags:"
_PREAMBLE = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok|absolutely)[!,.]*\s*)?"
    r"(?:(?:here(?:'s| is| are)|below is|this is)\s+(?:a|an|the|my|some)?\s*"
    r"(?:(?:short|brief|concise|detailed|possible|suitable|one-sentence|single-sentence|training)\s+)*"
    r"(?:caption|description|tags|tag list|list of tags|prompt)s?\b[^:\n]{0,60}:\s*"
    r"|(?:caption|description|tags|prompt)\s*:\s*)",
    re.IGNORECASE,
)
# "Let me know if you'd like ...", "I hope this helps!", "Feel free to ask ..." closing the answer
_CLOSING = re.compile(
    r"\s*(?:\n+|(?<=[.!?\"'\u201d])\s+)(?:let me know|i hope this|hope this helps|feel free|if you(?:'d| would) like|"
    r"would you like|is there anything)[^\n]*$",
    re.IGNORECASE | re.DOTALL,
)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "`": "`", "*": "*"}


def clean_answer(answer: str) -> str:
    """The caption inside a chat model's answer (see the module docstring); "" for none."""
    text = _THINKING.sub("", answer or "")
    text = _UNCLOSED_THINKING.sub("", text).strip()  # cut off while thinking: no caption in it
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    for _ in range(2):  # "Sure! Here is the caption:\n\n**Caption:** ..."
        text = text.replace("**", "") if text.startswith("**") else text
        stripped = _PREAMBLE.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    text = _CLOSING.sub("", text).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text.endswith(_QUOTES[text[0]]) \
            and text[0] not in text[1:-1]:
        text = text[1:-1].strip()
    return text

"""The template matcher: the same answers as the anchored regex it replaced, in linear time.

The regex (`(?P<slot>.+?)` per slot, literals with flexible blanks) backtracked over every way of
splitting a caption between the slots: 19 s per caption for a 3-slot pattern against 400 tags.
The matcher places each literal at its leftmost possible position, which is exact for this
pattern language; the reference regex below is kept only to check that on random inputs.
"""

from __future__ import annotations

import re
import signal
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core.toolkit.template import Template, _literal_regex


def reference_regex(template: Template) -> re.Pattern[str]:
    """The regex lorakit used before: exact, and exponential in the number of slots."""
    parts = [r"\A\s*"]
    for index, piece in enumerate(template.pieces):
        if piece.is_slot:
            last = index == len(template.pieces) - 1
            parts.append(f"(?P<s_{index}>.+)" if last else f"(?P<s_{index}>.+?)")
        else:
            parts.append(_literal_regex(piece.text))
    return re.compile("".join(parts) + r"\s*\Z", re.IGNORECASE | re.DOTALL)


TOKENS = ["a", "b", "x", ",", ", ", " ", "with", " with ", "  ", "; ", "|"]
LITERALS = ["a", ", ", " with ", ", b, ", "x", "a b", " ", ",", "b ; ", ",  ,"]


@st.composite
def pattern_and_caption(draw):
    pattern = draw(st.sampled_from(["", "a", "x "])).lstrip()
    slots = draw(st.integers(1, 4))
    for index in range(slots):
        pattern += f"{{s{index}}}"
        if index < slots - 1 or draw(st.booleans()):
            pattern += draw(st.sampled_from(LITERALS))
    caption = "".join(draw(st.lists(st.sampled_from(TOKENS), max_size=10)))
    return pattern.strip(), caption


@settings(max_examples=3000, deadline=None)
@given(pattern_and_caption())
def test_the_matcher_agrees_with_the_regex_it_replaced(case):
    pattern, caption = case
    try:
        template = Template.parse(pattern)
    except ValueError:
        return
    expected = reference_regex(template).match(caption)
    slots = [(index, piece.text) for index, piece in enumerate(template.pieces) if piece.is_slot]
    if expected is not None and any(not expected.group(f"s_{index}").strip() for index, _ in slots):
        return  # the regex let a slot be only blanks; the matcher never does (an empty slot)
    found = template.match(caption)
    assert (found is None) == (expected is None), (pattern, caption)
    if found is not None:
        for index, name in slots:
            assert template.slot_value(found, name)[0] == expected.group(f"s_{index}").strip(), (pattern, caption)


@contextmanager
def hang_guard(seconds: int):
    """Fail instead of hanging: the old matcher took minutes on these; the new one milliseconds."""
    def stop(*_):
        raise TimeoutError(f"template matching did not finish in {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


BACKTRACKING = [
    ("{subject}, {features}, {lighting}, in the style of moebius", ", ".join(f"tag{i}" for i in range(400))),
    (", ".join(f"{{s{i}}}" for i in range(12)) + " END", ", ".join(f"t{i}" for i in range(20))),
    (" ".join(f"{{{c}}}" for c in "abcdefgh") + " END", " ".join("word," for _ in range(300))),
    ("{a},  ,{b}", "x," + " " * 50_000),
    ("{a} with {b}, {c}", "a" + " with" * 30_000),
    ("{a} {b}", " " * 50_000 + "x"),
]


@pytest.mark.parametrize(("pattern", "caption"), BACKTRACKING)
def test_captions_that_backtracked_are_matched_and_explained_at_once(pattern, caption):
    template = Template.parse(pattern)
    with hang_guard(20):
        for _ in range(20):
            assert template.match(caption) is None
            assert template.explain(caption).startswith(("missing the literal", "slot"))


def test_a_long_caption_that_follows_the_template_gives_each_slot_its_text():
    template = Template.parse("{subject}, {features}, {lighting}, in the style of moebius")
    tags = ", ".join(f"tag{i}" for i in range(400))
    with hang_guard(20):
        found = template.match(f"knight, {tags}, dawn light, in the style of moebius")
    assert found is not None
    assert template.slot_value(found, "subject")[0] == "knight"
    assert template.slot_value(found, "features")[0] == "tag0"
    assert template.slot_value(found, "lighting")[0].endswith("tag399, dawn light")


def test_spans_point_at_the_slot_text():
    template = Template.parse("{style} {subject} with {features}, {lighting}")
    caption = "  watercolor  fox with red fur ,soft light  "
    found = template.match(caption)
    for slot, text in [("style", "watercolor"), ("subject", "fox"), ("features", "red fur"),
                       ("lighting", "soft light")]:
        value, (start, end) = template.slot_value(found, slot)
        assert value == text and caption[start:end].strip() == text


BLANKY = ["a", "b", "x", ",", ", ", " ", "with", " with ", "  ", "; ", "|", "\t"]


@st.composite
def any_pattern_and_caption(draw):
    """Blanks at the ends of the pattern and the caption too: where the two paths could differ."""
    pattern = draw(st.sampled_from(["", "a", " x ", " "]))
    slots = draw(st.integers(1, 4))
    for index in range(slots):
        pattern += f"{{s{index}}}"
        if index < slots - 1 or draw(st.booleans()):
            pattern += draw(st.sampled_from([*LITERALS, " ,", " "]))
    caption = "".join(draw(st.lists(st.sampled_from(BLANKY), max_size=12)))
    return pattern, caption


@settings(max_examples=3000, deadline=None)
@given(any_pattern_and_caption())
def test_the_one_regex_and_the_placement_give_the_same_slots(case):
    """On Python 3.11+ `match` is one regex with atomic groups; the placement it stands for
    (`_place`, also what `explain` walks) must agree with it everywhere."""
    pattern, caption = case
    try:
        template = Template.parse(pattern)
    except ValueError:
        return
    if template._regex is None:
        pytest.skip("atomic groups need Python 3.11")
    fast = template.match(caption)
    spans, failed_at = template._place(caption, whole=True)
    assert (fast is None) == (failed_at is not None), (pattern, caption)
    if fast is not None:
        placed = {k: caption[a:b].strip() for k, (a, b) in spans.items()}
        assert {k: fast.group(k).strip() for k in fast.spans} == placed

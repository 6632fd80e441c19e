"""Caption offsets map to file offsets exactly through CSV quotes and JSON escapes, in time
linear in the caption (one scan a record, whatever the number of violations in it)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_core.datasets.jsonl_reader import _escape_map


def _slow_raw_offset(raw: str, value_offset: int) -> int:
    """The escape walk the codec used to do for every violation (the reference)."""
    i = decoded = 0
    while i < len(raw) and decoded < value_offset:
        if raw[i] == "\\":
            if raw.startswith("u", i + 1):
                code = int(raw[i + 2:i + 6], 16)
                i += 12 if 0xD800 <= code < 0xDC00 and raw.startswith("\\u", i + 6) else 6
            else:
                i += 2
        else:
            i += 1
        decoded += 1
    return i


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab "\\\n\té😀\u2028,')), max_size=40), st.booleans())
def test_escape_map_matches_the_escape_walk(text, ascii_only):
    import bisect

    raw = json.dumps(text, ensure_ascii=ascii_only)[1:-1]
    decoded_at, added = _escape_map(raw)
    for offset in range(len(text) + 1):
        before = bisect.bisect_left(decoded_at, offset)
        assert offset + (added[before - 1] if before else 0) == _slow_raw_offset(raw, offset), (raw, offset)


def test_many_violations_in_one_long_caption_stay_linear(tmp_path, registry):
    """20,000 repeated tags in one caption: 19,999 LK103 violations (the speed is bench/'s; this
    checks that every one is still placed exactly)."""
    import lora_core
    from lora_core.testing import make_csv_dataset

    caption = ", ".join(["rain"] * 20_000) + ', "quoted"'
    path = make_csv_dataset(tmp_path / "ds", [("a.png", caption)], images=False)
    result = lora_core.lint(path, registry=registry, isolated=True, select=["LK103"])
    assert len(result) == 19_999
    located = result.violations[-1].location
    assert located is not None and located.column > 100_000  # past the doubled quotes, exactly placed

"""Fixes never lose or alter anything but caption text, write atomically, and converge."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lora_core
from lora_core import atomic
from lora_core.plugins import load_plugins
from lora_core.testing import csv_field, make_csv_dataset, write_png

REGISTRY = load_plugins(builtin_only=True)

cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
noisy_captions = st.lists(
    st.sampled_from(["cybrpnk", "neon city", "rain", " ", "  ", ",", ";", "|", "\u200b", "\u00a0", "\u201c",
                     "\t", "\n", "\r\n", '"', "Rain", "rain,", "，"]),
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    captions=st.lists(noisy_captions, min_size=1, max_size=8),
    extra=st.lists(cells, min_size=8, max_size=8),
    quote_all=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    unsafe=st.booleans(),
)
def test_fix_keeps_every_row_and_every_other_cell(tmp_path_factory, captions, extra, quote_all, newline, unsafe):
    folder = tmp_path_factory.mktemp("prop")
    lines = ["file_name,note,text"]
    for i, caption in enumerate(captions):
        quote = (lambda v: '"' + v.replace('"', '""') + '"') if quote_all else csv_field
        lines.append(f"img_{i}.png,{quote(extra[i])},{quote(caption)}")
        write_png(folder / f"img_{i}.png")
    path = folder / "metadata.csv"
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    before = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))

    lora_core.fix(path, registry=REGISTRY, isolated=True, unsafe=unsafe)
    after = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))

    assert len(after) == len(before)
    assert [row[:2] for row in after] == [row[:2] for row in before]  # file_name and the extra column
    assert after[0] == before[0]
    # a second fix changes nothing
    content = path.read_bytes()
    assert lora_core.fix(path, registry=REGISTRY, isolated=True, unsafe=unsafe).changes == {}
    assert path.read_bytes() == content


def test_quoting_style_and_newlines_are_kept(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    raw = 'file_name,text,source\r\n"a.png","cybrpnk,  rain","x"\r\nb.png,neon  city,y\r\n'
    (tmp_path / "metadata.csv").write_bytes(raw.encode())
    lora_core.fix(tmp_path, registry=REGISTRY, isolated=True)
    assert (tmp_path / "metadata.csv").read_bytes().decode() == raw.replace("  ", " ")


def test_jsonl_fix_touches_only_the_caption_token(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    raw = ('{"text": "cybr\\u200bpnk,  \\"neon\\" city", "file_name": "a.png", "n": 1}\n'
           '{ "file_name" : "b.png" ,"text":"caf\u00e9,  rain" }\n')
    (tmp_path / "metadata.jsonl").write_text(raw, encoding="utf-8")
    result = lora_core.lint(tmp_path, registry=REGISTRY, isolated=True, select=["LK1"])
    columns = [(v.code, v.location.line, v.location.column) for v in result]
    # `\u200b` is 6 characters in the file but 1 in the caption: columns are file columns
    assert columns == [("LK105", 1, 15), ("LK101", 1, 25), ("LK101", 2, 39)]
    lora_core.fix(tmp_path, registry=REGISTRY, isolated=True)
    assert (tmp_path / "metadata.jsonl").read_text(encoding="utf-8") == (
        '{"text": "cybrpnk, \\"neon\\" city", "file_name": "a.png", "n": 1}\n'
        '{ "file_name" : "b.png" ,"text":"caf\u00e9, rain" }\n')


def test_sidecar_fix_keeps_trailing_newline(tmp_path):
    write_png(tmp_path / "a.png")
    (tmp_path / "a.txt").write_bytes(b"cybrpnk,  rain,\r\n")
    lora_core.fix(tmp_path, registry=REGISTRY, isolated=True)
    assert (tmp_path / "a.txt").read_bytes() == b"cybrpnk, rain\r\n"


def test_crash_mid_write_leaves_the_original_intact(tmp_path, monkeypatch):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk,  rain")])
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        lora_core.fix(path, registry=REGISTRY, isolated=True)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".lorakit-tmp")] == []


def test_atomic_write_keeps_permissions(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("x")
    os.chmod(target, 0o640)
    atomic.atomic_write_bytes(target, b"y")
    assert target.read_bytes() == b"y" and (target.stat().st_mode & 0o777) == 0o640


def test_diff_writes_nothing(tmp_path):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk,  rain")])
    original = path.read_bytes()
    result = lora_core.fix(path, registry=REGISTRY, isolated=True, write=False)
    assert path.read_bytes() == original
    assert '-a.png,"cybrpnk,  rain"\n+a.png,"cybrpnk, rain"' in result.diff(Path(tmp_path))

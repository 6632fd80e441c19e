"""LK0xx structure rules: files, rows, encodings and image paths, each with exact locations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lora_core
from lora_core.testing import make_csv_dataset, make_sidecar_dataset, write_png


def lint(path, registry, **options):
    """Lint with the dataset and hygiene packs (LK0xx, LK1xx): the caption-content packs are tested apart."""
    return lora_core.lint(path, registry=registry, isolated=True, select=["LK0", "LK1"], **options)


def codes(result) -> list[str]:
    return [v.code for v in result]


def test_image_missing_points_at_the_file_name_cell_and_hints_case(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, rain"), ("B.png", "cybrpnk, neon")], images=False)
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    (violation,) = [v for v in lint(path, registry) if v.code == "LK001"]
    assert (violation.location.line, violation.location.column) == (3, 1)
    assert violation.image == "B.png" and "`b.png` exists" in violation.message
    assert "LK002" not in codes(lint(path, registry))  # b.png is listed, in another case


def test_caption_missing_for_csv_and_sidecars(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "csv", [("a.png", "cybrpnk")])
    write_png(tmp_path / "csv" / "sub" / "b.png")
    (violation,) = [v for v in lint(path, registry) if v.code == "LK002"]
    assert violation.image == "sub/b.png" and "not listed in metadata.csv" in violation.message
    folder = make_sidecar_dataset(tmp_path / "side", {"a.png": "cybrpnk, rain"})
    write_png(folder / "b.png")
    (violation,) = [v for v in lint(folder, registry) if v.code == "LK002"]
    assert "`b.txt` does not exist" in violation.message and violation.location.path == folder / "b.png"


def test_caption_empty(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", ""), ("b.png", "   "), ("c.png", "\u200b"), ("d.png", "ok tag")])
    assert [v.image for v in lint(path, registry) if v.code == "LK003"] == ["a.png", "b.png", "c.png"]


def test_invalid_encoding_reports_byte_offset_and_keeps_linting(tmp_path, registry):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    data = "file_name,text\na.png,caf\u00e9 interior\nb.png,cybrpnk,  rain\n".encode("latin-1")
    (tmp_path / "metadata.csv").write_bytes(data.replace(b"cybrpnk,  rain", b'"cybrpnk,  rain"'))
    result = lint(tmp_path, registry)
    (bad,) = [v for v in result if v.code == "LK004"]
    assert bad.location.line == 2 and bad.image == "a.png"
    offset = data.index(b"\xe9")
    assert f"byte offset {offset}" in bad.message and "0xE9" in bad.message
    assert "LK101" in codes(result)  # the next row is still linted


def test_fix_elsewhere_keeps_invalid_bytes(tmp_path, registry):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    raw = b'file_name,text\na.png,caf\xe9 interior\nb.png,"cybrpnk,  rain"\n'
    (tmp_path / "metadata.csv").write_bytes(raw)
    lora_core.fix(tmp_path, registry=registry, isolated=True)
    assert (tmp_path / "metadata.csv").read_bytes() == raw.replace(b"cybrpnk,  rain", b"cybrpnk, rain")


def test_encoding_hygiene_bom_and_mixed_newlines_fixed(tmp_path, registry):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    (tmp_path / "metadata.csv").write_bytes(b"\xef\xbb\xbffile_name,text\r\na.png,cybrpnk\r\nb.png,neon\n")
    found = [v for v in lint(tmp_path, registry) if v.code == "LK005"]
    assert [v.location.line for v in found] == [1, 3]
    assert "byte order mark" in found[0].message and "1 LF" in found[1].message
    lora_core.fix(tmp_path, registry=registry, isolated=True)
    assert (tmp_path / "metadata.csv").read_bytes() == b"file_name,text\r\na.png,cybrpnk\r\nb.png,neon\r\n"
    assert "LK005" not in codes(lint(tmp_path, registry))


def test_duplicate_entry(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", "one"), ("./a.png", "two"), ("b.png", "three")])
    (violation,) = [v for v in lint(path, registry) if v.code == "LK006"]
    assert violation.location.line == 3 and "first at line 2" in violation.message


def test_path_outside_root_is_never_opened(tmp_path, registry):
    outside = write_png(tmp_path / "outside.png")
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(outside, data / "link.png")
    os.symlink(tmp_path, data / "up")
    path = make_csv_dataset(data, [(str(outside), "abs"), ("../outside.png", "dots"), ("link.png", "link"),
                                   ("up/outside.png", "via folder")], images=False)
    found = [v for v in lint(path, registry) if v.code == "LK007"]
    assert [v.image for v in found] == [str(outside), "../outside.png", "link.png", "up/outside.png"]
    assert "absolute" in found[0].message and "`..`" in found[1].message and "symbolic link" in found[2].message
    records = lint(path, registry).datasets[0].dataset.records
    assert all(r.image_path is None for r in records)
    assert "LK001" not in codes(lint(path, registry))


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("", 1, "file is empty"),
        ("file_name,text\n", 1, "header row but no data rows"),
        ("file_name,caption\na.png,x\n", 1, "missing column `text`"),
        ("file_name ,text\na.png,x\n", 1, "missing column `file_name` in the header row (did you mean"),
        ("file_name,text,text\na.png,x,y\n", 1, "duplicate header"),
        ("file_name,text\na.png,cybrpnk, rain\n", 2, "row has 3 fields but the header has 2"),
        ('file_name,text\na.png,"cybrpnk, rain\nb.png,x\n', 2, "unclosed quote"),
        ('file_name,text\na.png,"cyb"rpnk\nb.png,x\n', 2, "after a closing quote"),
    ],
)
def test_malformed_metadata(tmp_path, registry, content, line, message):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    (tmp_path / "metadata.csv").write_text(content, encoding="utf-8")
    found = [v for v in lint(tmp_path, registry) if v.code == "LK008"]
    assert found, codes(lint(tmp_path, registry))
    assert found[0].location.line == line and message in found[0].message


def test_malformed_row_does_not_stop_the_other_rows(tmp_path, registry):
    path = make_csv_dataset(tmp_path, [("a.png", "x")])
    path.write_text('file_name,text\na.png,"cy"b"\nb.png,cybrpnk,,\nc.png,"ok,  tag"\n', encoding="utf-8")
    write_png(tmp_path / "c.png")
    result = lint(tmp_path, registry)
    assert [(v.code, v.location.line) for v in result if v.code in ("LK008", "LK101")] == [
        ("LK008", 2), ("LK008", 3), ("LK101", 4)]


def test_jsonl_malformed_lines(tmp_path, registry):
    write_png(tmp_path / "a.png")
    (tmp_path / "metadata.jsonl").write_text(
        '{"file_name": "a.png", "text": "cybrpnk,  rain"}\n{"file_name": "b.png"\n[1, 2]\n'
        '{"file_name": "a.png", "text": 3}\n', encoding="utf-8")
    result = lint(tmp_path, registry)
    assert [(v.code, v.location.line) for v in result if v.code in ("LK008", "LK101")] == [
        ("LK101", 1), ("LK008", 2), ("LK008", 3), ("LK008", 4)]


def test_caption_extension_mismatch(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path, {"a.png": "cybrpnk", "b.png": "neon"}, extension=".caption")
    result = lint(folder, registry)
    assert sorted(v.image for v in result if v.code == "LK009") == ["a.png", "b.png"]
    assert "LK002" not in codes(result)
    assert codes(lint(folder, registry, caption_extension=".caption")) == []


def test_orphan_sidecar_reported_as_image_missing(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path, {"a.png": "cybrpnk"})
    (folder / "ghost.txt").write_text("cybrpnk, ghost", encoding="utf-8")
    (folder / "README.txt").write_text("about this dataset", encoding="utf-8")
    (violation,) = [v for v in lint(folder, registry) if v.code == "LK001"]
    assert violation.location.path == folder / "ghost.txt" and "no image beside it" in violation.message


def test_kohya_repeat_folders(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path, {"10_cybrpnk city/a.png": "cybrpnk, rain", "2_reg/b.png": "city"})
    records = lint(folder, registry).datasets[0].dataset.records
    assert {(r.image, r.repeats, r.concept) for r in records} == {
        ("10_cybrpnk city/a.png", 10, "cybrpnk city"), ("2_reg/b.png", 2, "reg")}


def test_single_sidecar_lints_its_whole_dataset(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path, {"10_x/a.png": "same", "10_x/b.png": "same"})
    result = lint(folder / "10_x" / "a.txt", registry)
    assert [v.code for v in result] == ["LK107", "LK107"]


def test_multiline_quoted_caption_positions(tmp_path, registry):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    (tmp_path / "metadata.csv").write_text(
        'file_name,text\na.png,"cybrpnk,\nneon ""city"",  rain"\nb.png,x  y\n', encoding="utf-8")
    found = [(v.location.line, v.location.column) for v in lint(tmp_path, registry) if v.code == "LK101"]
    # line 3 is `neon ""city"",  rain"`: the double space after the doubled quotes is at column 15
    assert found == [(2, 16), (3, 15), (4, 8)]


def test_paths_that_are_not_datasets(tmp_path, registry):
    image = write_png(tmp_path / "photo.png")
    # a picture with no captions or metadata beside it belongs to no dataset (pre-commit passes
    # docs/screenshot.png too): skipped with a note, like a .txt with no images
    assert lora_core.lint(image, registry=registry).skipped == [image]
    notes = tmp_path / "notes.md"
    notes.write_text("x", encoding="utf-8")
    with pytest.raises(lora_core.DatasetError, match="not a dataset"):
        lint(notes, registry)
    with pytest.raises(lora_core.DatasetError, match="no such file"):
        lint(tmp_path / "nope.csv", registry)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(lora_core.DatasetError, match="no images and no caption files"):
        lint(empty, registry)
    os.mkfifo(tmp_path / "fifo.csv")
    with pytest.raises(lora_core.DatasetError, match="not a regular file"):
        lint(tmp_path / "fifo.csv", registry)
    (tmp_path / "u16").mkdir()
    (tmp_path / "u16" / "metadata.csv").write_bytes("file_name,text\n".encode("utf-16"))
    with pytest.raises(lora_core.DatasetError, match="UTF-16"):
        lint(tmp_path / "u16", registry)


def test_unreadable_file(tmp_path, registry, monkeypatch):
    path = make_csv_dataset(tmp_path, [("a.png", "x")])

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(lora_core.DatasetError, match="permission denied"):
        lint(path, registry)


def test_huge_caption_and_nul_bytes(tmp_path, registry):
    huge = "cybrpnk, " + "neon " * 2_000_000  # a 10 MB cell
    path = make_csv_dataset(tmp_path, [("a.png", huge), ("b.png", "cyb\x00rpnk, rain")])
    result = lint(path, registry)
    assert [v.image for v in result if v.code == "LK105"] == ["b.png"]

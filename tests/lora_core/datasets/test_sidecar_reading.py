"""Reading sidecar datasets fast without changing what is read: str paths, one batch of reads,
two processes for big batches, and the same clean errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lora_core
from lora_core.datasets import reader
from lora_core.errors import DatasetError
from lora_core.testing import make_sidecar_dataset


def _files(tmp_path, count):
    paths = []
    for i in range(count):
        path = tmp_path / f"{i:04d}.txt"
        path.write_bytes(f"caption {i}, tag\n".encode() * (1 + i % 3))
        paths.append(str(path))
    return paths


def test_parallel_batch_read_returns_every_file_in_order(tmp_path, monkeypatch):
    paths = _files(tmp_path, 300)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 200_000)  # more than one read() chunk, in the child's half
    paths.append(str(big))
    expected = [Path(p).read_bytes() for p in paths]
    monkeypatch.setattr(reader, "PARALLEL_READ_MIN_FILES", 10)
    assert reader.read_small_files(paths) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_in_the_childs_half_is_the_same_clean_error(tmp_path, monkeypatch):
    paths = _files(tmp_path, 40)
    os.chmod(paths[-1], 0)
    monkeypatch.setattr(reader, "PARALLEL_READ_MIN_FILES", 10)
    with pytest.raises(DatasetError, match="0039.txt: permission denied"):
        reader.read_small_files(paths)


def test_a_missing_file_in_the_childs_half_is_the_same_clean_error(tmp_path, monkeypatch):
    paths = _files(tmp_path, 40)
    paths[-1] = str(tmp_path / "gone.txt")
    monkeypatch.setattr(reader, "PARALLEL_READ_MIN_FILES", 10)
    with pytest.raises(DatasetError, match="gone.txt: no such file or folder"):
        reader.read_small_files(paths)


def test_a_fifo_named_like_a_caption_is_refused_not_waited_on(tmp_path, registry):
    make_sidecar_dataset(tmp_path / "ds", {"a.png": "neon city, rain, night"})
    (tmp_path / "ds" / "b.png").write_bytes((tmp_path / "ds" / "a.png").read_bytes())
    os.mkfifo(tmp_path / "ds" / "b.txt")
    with pytest.raises(DatasetError, match="b.txt: not a regular file"):
        lora_core.lint(tmp_path / "ds", registry=registry, isolated=True)


def test_sidecar_records_keep_their_paths_images_and_kohya_folders(tmp_path, registry):
    make_sidecar_dataset(tmp_path / "ds", {"10_ohwx/a.png": "ohwx, snow", "10_ohwx/b.png": "ohwx, river",
                                            "5_style/c.png": "\ufeffplain caption here",
                                            "5_style/sub/d.jpg": "tags, more tags"})
    (tmp_path / "ds" / "10_ohwx" / "a.txt").write_bytes(b"ohwx, snow\r\n")
    result = lora_core.lint(tmp_path / "ds", registry=registry, isolated=True, select=["LK005"])
    dataset = result.datasets[0].dataset
    by_image = {r.image: r for r in dataset.records}
    assert sorted(by_image) == ["10_ohwx/a.png", "10_ohwx/b.png", "5_style/c.png", "5_style/sub/d.jpg"]
    assert by_image["10_ohwx/a.png"].caption == "ohwx, snow" and by_image["10_ohwx/a.png"].concept == "ohwx"
    assert by_image["10_ohwx/a.png"].repeats == 10 and by_image["5_style/c.png"].repeats == 5
    assert by_image["5_style/c.png"].caption == "plain caption here"  # the BOM is LK005's, not the caption's
    sidecar = tmp_path / "ds" / "5_style" / "sub" / "d.txt"
    assert by_image["5_style/sub/d.jpg"].source.path == sidecar  # a Path when asked
    assert by_image["5_style/sub/d.jpg"].image_path == str(sidecar.with_suffix(".jpg"))
    assert [v.location.path.name for v in result] == ["c.txt"]  # the BOM (LK005)


def test_images_beside_kohya_folders_are_not_read_as_training_records(tmp_path, registry):
    make_sidecar_dataset(tmp_path / "ds", {"10_ohwx/a.png": "ohwx, snow", "c.png": "plain caption here",
                                            "sub/d.jpg": "tags, more tags"})
    result = lora_core.lint(tmp_path / "ds", registry=registry, isolated=True, select=["LK012"])
    assert [r.image for r in result.datasets[0].dataset.records] == ["10_ohwx/a.png"]
    assert sorted(v.location.path.name for v in result if v.code == "LK012") == ["c.png", "d.jpg"]


def test_a_caption_extension_in_another_case_is_not_the_caption(tmp_path, registry):
    """kohya looks for `img6.txt` exactly: on Linux `img6.TXT` is not found, so lorakit does not
    take it for the caption either, and says why (issue 17)."""
    make_sidecar_dataset(tmp_path / "ds", {"img5.png": "cybrpnk, neon city, rain"})
    make_sidecar_dataset(tmp_path / "ds", {"img6.png": "cybrpnk, neon city, night"})
    (tmp_path / "ds" / "img6.txt").rename(tmp_path / "ds" / "img6.TXT")
    result = lora_core.lint(tmp_path / "ds", registry=registry, isolated=True, ignore=["LK6"])
    assert [r.image for r in result.datasets[0].dataset.records] == ["img5.png"]
    (violation,) = [v for v in result if v.code == "LK009"]
    assert "has extension `.TXT` but `caption-extension` is `.txt`" in violation.message

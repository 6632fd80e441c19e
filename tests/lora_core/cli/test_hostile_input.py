"""Hostile and broken input gets one clear line and the documented exit code, never a traceback
(issue 14): bytes that are not UTF-8, reports that cannot be written, fixes on a full disk."""

from __future__ import annotations

import errno
import json

from click.testing import CliRunner

import lora_core
from lora_core.cli import cli
from lora_core.testing import make_csv_dataset


def _latin1_dataset(tmp_path):
    rows = [("a.png", "cafe neon city, rain, night"), ("b.png", "cybrpnk, city, rain")]
    path = make_csv_dataset(tmp_path / "ds", rows)
    path.write_bytes(path.read_bytes().replace(b"cafe", b"caf\xe9"))
    return path


def test_a_latin1_byte_in_a_caption_is_reported_not_a_crash(tmp_path, registry):
    path = _latin1_dataset(tmp_path)
    result = lora_core.lint(path, registry=registry, isolated=True, ignore=["LK6"])
    assert not result.crashes, [c.describe() for c in result.crashes]  # LK501 counts tokens of it
    assert "LK004" in {v.code for v in result}
    for output_format in ("full", "json", "html", "sarif"):
        out = tmp_path / f"report.{output_format}"
        run = CliRunner().invoke(cli, ["lint", str(path), "--isolated", "--ignore", "LK6", "--format", output_format,
                                       "-o", str(out)])
        assert run.exit_code == 1, run.output
        text = out.read_bytes().decode("utf-8")  # valid UTF-8, whatever the captions held
        if output_format == "json":
            json.loads(text)
    stats = CliRunner().invoke(cli, ["stats", str(path)])
    assert stats.exit_code == 0, stats.output


def test_a_report_that_cannot_be_written_is_one_line_exit_2(tmp_path):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    for target in (tmp_path / "missing" / "r.json", path / "r.json"):  # no such folder; a file as folder
        run = CliRunner().invoke(cli, ["lint", str(path), "--format", "json", "-o", str(target)])
        assert run.exit_code == 2, run.output
        assert f"lorakit: error: {target}: cannot write the json report (" in run.output
        assert "Traceback" not in run.output


def test_fix_on_a_full_disk_is_one_line_exit_2_and_keeps_the_file(tmp_path, monkeypatch):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", " cybrpnk,  neon city, rain ")])
    before = path.read_bytes()

    def full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("lora_core.api.atomic_write_bytes", full)
    run = CliRunner().invoke(cli, ["lint", str(path), "--isolated", "--fix"])
    assert run.exit_code == 2, run.output
    assert f"{path}: cannot write the fixed captions; no file was changed (no space left on the device)" in run.output
    assert path.read_bytes() == before

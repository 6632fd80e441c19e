"""Hostile and broken input gets one clear line and the documented exit code, never a traceback
(issue 14): bytes that are not UTF-8, reports that cannot be written, fixes on a full disk."""

from __future__ import annotations

import errno
import io
import json

import pytest
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

    monkeypatch.setattr("lora_core.api.write_user_file", lambda target, data, root: full(target, data))
    run = CliRunner().invoke(cli, ["lint", str(path), "--isolated", "--fix"])
    assert run.exit_code == 2, run.output
    assert f"{path}: cannot write the fixed captions; no file was changed (no space left on the device)" in run.output
    assert path.read_bytes() == before


def test_jsonl_lines_nested_too_deep_or_with_huge_numbers_are_malformed_rows(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    deep = '{"file_name": "b.png", "text": "x", "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    big = '{"file_name": "c.png", "text": "y", "big": ' + "9" * 5000 + "}"
    ok = json.dumps({"file_name": "a.png", "text": "cybrpnk, neon city, rain"})
    (folder / "metadata.jsonl").write_text("\n".join([ok, deep, big]) + "\n", encoding="utf-8")
    result = lora_core.lint(folder, registry=registry, isolated=True, ignore=["LK6"])
    assert not result.crashes
    malformed = {v.location.line: v.message for v in result if v.code == "LK008"}
    assert malformed[2] == "invalid JSON: nested too deeply"
    assert malformed[3].startswith("invalid JSON: Exceeds the limit")


def test_broken_config_files_are_one_line_exit_2(tmp_path):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    config = tmp_path / "ds" / "lorakit.toml"
    cases = [
        ('[style]\nrequired = ["caf\xe9"]\n'.encode("latin-1"), "TOML files are UTF-8 text; this one is not UTF-8"),
        ('[style]\nrequired = ["x"]\n'.encode("utf-16"), "this one is UTF-16"),
        (("a = " + "[" * 50_000 + "]" * 50_000 + "\n").encode(), "nested too deeply"),
        (b"\x00\x01\x02binary", "invalid TOML"),
    ]
    for data, expected in cases:
        config.write_bytes(data)
        run = CliRunner().invoke(cli, ["lint", str(path)])
        assert run.exit_code == 2 and expected in run.output and "Traceback" not in run.output, run.output
    config.unlink()
    (tmp_path / "ds" / "pyproject.toml").write_text("[tool]\nlorakit = 5\n", encoding="utf-8")
    run = CliRunner().invoke(cli, ["lint", str(path)])
    assert run.exit_code == 2 and "`lorakit` in [tool] must be a table" in run.output
    fifo = tmp_path / "fifo.toml"
    import os

    os.mkfifo(fifo)
    run = CliRunner().invoke(cli, ["lint", str(path), "--config", str(fifo)])
    assert run.exit_code == 2 and "not a regular file" in run.output


def test_a_nul_in_a_file_name_is_a_missing_image_not_a_crash(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    path.write_bytes(path.read_bytes().replace(b"a.png", b"a\x00b.png"))
    result = lora_core.lint(path, registry=registry, isolated=True)
    assert not result.crashes, [c.describe() for c in result.crashes]
    assert sorted(v.code for v in result) == ["LK001", "LK002"]  # a.png now has no row


def test_misbehaving_plugins_are_named_and_never_pass_silently(tmp_path):
    from pathlib import Path

    from lora_core import Rule, Severity, hookimpl
    from lora_core.datasets.reader import DatasetReader
    from lora_core.testing import registry_with

    class Exits(Rule):
        """## What it does\nExits.\n## Why it matters\nx\n## Example\nx\n## Fix\nx"""

        code, name, summary, severity = "EX901", "exits", "Exits", Severity.WARNING

        def check_record(self, record, ctx):
            raise SystemExit(0)

    class Odd(Rule):
        """## What it does\nOdd data.\n## Why it matters\nx\n## Example\nx\n## Fix\nx"""

        code, name, summary, severity = "EX902", "odd-data", "Odd data", Severity.WARNING

        def check_record(self, record, ctx):
            yield self.at_caption(record, "odd", where=Path("/x"), tags={"b", "a"}, thing=object.__new__(object))

    class BadReader(DatasetReader):
        name, priority = "bad", 100

        def claims(self, path):
            raise TypeError("claims() exploded")

    class Plugin:
        @hookimpl
        def register_rules(self, register):
            register(Exits)
            register(Odd)

    class ReaderPlugin:
        @hookimpl
        def register_readers(self, register):
            register(BadReader())

    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    registry = registry_with(Plugin(), names=["exits"])
    result = lora_core.lint(path, registry=registry, isolated=True, select=["EX9"])
    assert [c.code for c in result.crashes] == ["EX901"] and "SystemExit" in result.crashes[0].error
    assert result.exit_code() == 2
    from lora_core.reporters import Report
    from lora_core.reporters.machine import render_json

    buffer = io.StringIO()
    render_json(Report(result, cwd=tmp_path), buffer)
    assert json.loads(buffer.getvalue())[0]["data"]["tags"] == ["a", "b"]
    reader_registry = registry_with(ReaderPlugin(), names=["badreader"])
    with pytest.raises(lora_core.LorakitError, match="dataset reader 'bad' of plugin 'badreader' failed in claims"):
        lora_core.lint(path, registry=reader_registry, isolated=True)


def test_a_plugin_that_exits_while_registering_fails_alone(tmp_path):
    from lora_core import hookimpl
    from lora_core.testing import registry_with

    class Quits:
        @hookimpl
        def register_rules(self, register):
            raise SystemExit(0)

    registry = registry_with(Quits(), names=["quits"])
    assert registry.plugins["quits"].status == "failed" and "SystemExit" in registry.plugins["quits"].error
    with pytest.raises(lora_core.LorakitError, match="required plugin 'quits' is failed"):
        registry.require(["quits"])


def test_fix_finds_a_jsonl_caption_whose_key_is_written_with_escapes(tmp_path, registry):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "metadata.jsonl").write_text('{"file_name": "a.png", "\\u0074ext": "cybrpnk,  neon city, rain"}\n',
                                           encoding="utf-8")
    fixed = lora_core.fix(folder, registry=registry, isolated=True, ignore=["LK6"])
    assert fixed.applied == 1
    assert (folder / "metadata.jsonl").read_text(encoding="utf-8") == (
        '{"file_name": "a.png", "\\u0074ext": "cybrpnk, neon city, rain"}\n')


def test_lk004_offers_the_cp1252_reading_as_an_unsafe_fix(tmp_path, registry):
    path = _latin1_dataset(tmp_path)
    found = [v for v in lora_core.lint(path, registry=registry, isolated=True, select=["LK004"])]
    assert len(found) == 1 and found[0].fix is not None and found[0].image == "a.png"
    assert "as cp1252 it would read 'é'" in found[0].message
    safe = lora_core.fix(path, registry=registry, isolated=True, select=["LK004"])
    assert safe.applied == 0  # a guess at an encoding is never a safe fix
    lora_core.fix(path, registry=registry, isolated=True, select=["LK004"], unsafe=True)
    assert "café neon city" in path.read_text(encoding="utf-8")
    assert not list(lora_core.lint(path, registry=registry, isolated=True, select=["LK004"]))


def test_fix_keeps_links_and_read_only_files_and_never_writes_outside(tmp_path, registry):
    import os

    from lora_core.testing import make_sidecar_dataset

    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "cybrpnk,  neon city, rain", "b.png": "x",
                                                     "c.png": "x", "d.png": "x"})
    outside = tmp_path / "outside.txt"
    outside.write_text("cybrpnk,  far away, rain\n", encoding="utf-8")
    (folder / "b.txt").unlink()
    (folder / "b.txt").symlink_to(outside)  # a sidecar that leads out of the dataset
    inside = folder / "sub"
    inside.mkdir()
    (inside / "real.txt").write_text("cybrpnk,  linked, rain\n", encoding="utf-8")
    (folder / "c.txt").unlink()
    (folder / "c.txt").symlink_to(inside / "real.txt")  # a link within the dataset
    os.link(folder / "a.txt", tmp_path / "hardlink.txt")  # a hard link
    (folder / "d.txt").write_text("cybrpnk,  read only, rain\n", encoding="utf-8")
    os.chmod(folder / "d.txt", 0o444)
    try:
        lora_core.fix(folder, registry=registry, isolated=True, select=["LK101"])
    except lora_core.LorakitError as exc:
        assert "b.txt: is a symbolic link to" in str(exc) and "outside the dataset: not written" in str(exc)
    assert outside.read_text(encoding="utf-8") == "cybrpnk,  far away, rain\n"  # never written
    assert (folder / "b.txt").is_symlink()
    (folder / "b.txt").unlink()
    (folder / "b.txt").write_text("cybrpnk, neon, rain\n", encoding="utf-8")
    with pytest.raises(lora_core.LorakitError, match="d.txt: is read-only: not written"):
        lora_core.fix(folder, registry=registry, isolated=True, select=["LK101"])
    os.chmod(folder / "d.txt", 0o644)
    lora_core.fix(folder, registry=registry, isolated=True, select=["LK101"])
    assert (folder / "c.txt").is_symlink() and (inside / "real.txt").read_text() == "cybrpnk, linked, rain\n"
    assert (tmp_path / "hardlink.txt").read_text() == "cybrpnk, neon city, rain\n"  # the hard link sees the fix
    assert os.stat(folder / "a.txt").st_ino == os.stat(tmp_path / "hardlink.txt").st_ino


def test_reports_never_overwrite_inputs_or_embed_foreign_pictures(tmp_path):
    import os

    from lora_core.testing import make_sidecar_dataset, write_photo

    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "cybrpnk, neon city, rain"})
    secret = write_photo(tmp_path / "secret.png")
    os.symlink(secret, folder / "link.png")
    (folder / "link.txt").write_text("cybrpnk, linked, rain\n", encoding="utf-8")
    run = CliRunner().invoke(cli, ["lint", str(folder), "--isolated", "--format", "html", "-o",
                                   str(tmp_path / "r.html")])
    assert run.exit_code in (0, 1), run.output
    assert (tmp_path / "r.html").read_text(encoding="utf-8").count("data:image/jpeg") == 1  # a.png only
    before = (folder / "a.txt").read_bytes()
    run = CliRunner().invoke(cli, ["lint", str(folder), "--isolated", "--format", "json", "-o", str(folder / "a.txt")])
    assert run.exit_code == 2 and "is an input of this lint" in run.output
    assert (folder / "a.txt").read_bytes() == before


def test_nan_and_a_folder_named_lorakit_toml_are_config_errors(tmp_path):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    (tmp_path / "ds" / "lorakit.toml").write_text("[style]\nmin-coverage = nan\n", encoding="utf-8")
    run = CliRunner().invoke(cli, ["lint", str(path)])
    assert run.exit_code == 2 and "min-coverage must be a number in [0.0, 1.0], got number nan" in run.output
    (tmp_path / "ds" / "lorakit.toml").unlink()
    (tmp_path / "ds" / "lorakit.toml").mkdir()
    run = CliRunner().invoke(cli, ["lint", str(path)])
    assert run.exit_code == 2 and "is not a regular file" in run.output


def test_a_wrong_tokenizer_path_is_a_config_error(tmp_path):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk, neon city, rain")])
    for value in (str(tmp_path / "missing"), str(tmp_path), "/etc/passwd"):
        (tmp_path / "ds" / "lorakit.toml").write_text(f'[tokens]\ntokenizer = "{value}"\n', encoding="utf-8")
        run = CliRunner().invoke(cli, ["lint", str(path), "--ignore", "LK6"])
        assert run.exit_code == 2 and "[tokens] tokenizer" in run.output, run.output


def test_model_hints_name_an_option_the_command_has():
    from lora_core.toolkit.hub import how_to_provide

    assert how_to_provide("[train] base-model") == "set [train] base-model to a local model folder"
    assert how_to_provide("--clip-model") == "pass --clip-model /path/to/folder"
    assert how_to_provide("captioner blip") == "pass --model /path/to/folder"


def test_the_csv_captioner_refuses_when_there_is_nothing_to_take(tmp_path):
    from lora_core.testing import write_pngs

    write_pngs(tmp_path / "imgs", 3)
    run = CliRunner().invoke(cli, ["caption", str(tmp_path / "imgs"), "--captioner", "csv"])
    assert run.exit_code == 2 and "no existing captions to use" in run.output
    assert not (tmp_path / "imgs" / "metadata.csv").exists()

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
    with pytest.raises(lora_core.LorakitError, match=r"cannot write the fixed captions; no file was changed \(disk"):
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


def test_diff_of_sidecars_without_a_final_newline_applies_with_git(tmp_path):
    """Issue 24 #2: caption files without a trailing newline (the usual case) get git's
    `\\ No newline at end of file`, so the diff is readable and `git apply` takes it."""
    import shutil
    import subprocess

    from lora_core.testing import make_sidecar_dataset

    folder = tmp_path / "set"
    make_sidecar_dataset(folder, {"a.png": "cybrpnk,  rain", "b.png": "cybrpnk, neon;  city"})
    for sidecar in folder.glob("*.txt"):
        sidecar.write_bytes(sidecar.read_bytes().rstrip(b"\n"))
    result = lora_core.fix(folder, registry=REGISTRY, isolated=True, write=False)
    patch = result.diff(folder)
    assert "-cybrpnk,  rain\n\\ No newline at end of file\n+cybrpnk, rain\n\\ No newline at end of file\n" in patch
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (tmp_path / "patch.diff").write_text(patch, encoding="utf-8")
    subprocess.run(["git", "apply", str(tmp_path / "patch.diff")], cwd=folder, check=True)
    assert (folder / "a.txt").read_bytes() == result.changes[folder / "a.txt"][1]
    assert (folder / "b.txt").read_bytes() == result.changes[folder / "b.txt"][1]


def _plugin_with(rule_class):
    from lora_core import hookimpl
    from lora_core.testing import registry_with

    class Plugin:
        @hookimpl
        def register_rules(self, register):
            register(rule_class)

    return registry_with(Plugin(), names=["fixes"])


def test_fixes_that_never_settle_write_nothing_and_exit_2(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lora_core import Fix, Rule, Severity
    from lora_core.cli import cli

    class Grows(Rule):
        """## What it does\nx\n## Why it matters\nx\n## Example\nx\n## Fix\nx"""

        code, name, summary, severity = "EX801", "grows", "Grows", Severity.WARNING

        def check_record(self, record, ctx):
            at = (record.caption or "").find("car")
            if at >= 0:  # "car" -> "red sports car" holds "car" again: it never settles
                yield self.at_caption(record, "vague", (at, at + 3), Fix.replace("be specific", at, at + 3,
                                                                                  "red sports car"))

    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, car, rain")])
    original = path.read_bytes()
    fixed = lora_core.fix(path, registry=_plugin_with(Grows), isolated=True, select=["EX8"])
    assert not fixed.converged and fixed.unsettled == ["EX801"] and fixed.changes == {}
    assert path.read_bytes() == original
    monkeypatch.setattr("lora_core.cli.lint.build_registry", lambda *args, **kwargs: _plugin_with(Grows))
    run = CliRunner().invoke(cli, ["lint", str(path), "--isolated", "--select", "EX8", "--fix"])
    assert run.exit_code == 2 and "fixes did not settle after 25 rounds (EX801 kept changing" in run.output
    assert "report it to the plugin 'fixes'" in run.output  # a third-party rule: its plugin, by name
    assert path.read_bytes() == original


def test_lorakits_own_unsettled_fixes_are_reported_to_lorakit():
    """Issue 23 #13: "report it to the rule's plugin" was said of lorakit's own rules."""
    from lora_core.cli.lint import _owners
    from lora_core.plugins import load_plugins

    assert _owners(["LK101", "LK305"], load_plugins(builtin_only=True)) == "lorakit (these are its own rules)"


def test_an_edit_outside_its_caption_is_refused(tmp_path):
    from lora_core import Fix, Rule, Severity
    from lora_core.violations import Edit

    class Reversed(Rule):
        """## What it does\nx\n## Why it matters\nx\n## Example\nx\n## Fix\nx"""

        code, name, summary, severity = "EX802", "reversed", "Reversed", Severity.WARNING

        def check_record(self, record, ctx):
            yield self.at_caption(record, "bad", None, Fix("bad", edits=(Edit(9, 3, "ZZFIXED"),)))

    path = make_csv_dataset(tmp_path, [("a.png", "[style: x] cybrpnk, rain")])
    original = path.read_bytes()
    fixed = lora_core.fix(path, registry=_plugin_with(Reversed), isolated=True, select=["EX8"])
    assert fixed.applied == 0 and path.read_bytes() == original
    assert fixed.invalid == ["rule EX802 offered a fix with an edit at 9..3 of a 24-character caption (a.png); "
                             "not applied"]
    assert [v.code for v in fixed.remaining] == ["EX802"]  # still reported: the run does not pass


def test_a_file_edited_during_fix_is_not_overwritten(tmp_path, monkeypatch):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk,  rain, night")])
    import lora_core.api as api

    real = api.fix_dataset

    def meanwhile(*args, **kwargs):
        outcome = real(*args, **kwargs)
        path.write_bytes(path.read_bytes().replace(b"night", b"dusk"))  # the user saves an edit
        return outcome

    monkeypatch.setattr(api, "fix_dataset", meanwhile)
    with pytest.raises(lora_core.LorakitError, match="changed on disk while lorakit was fixing it"):
        lora_core.fix(path, registry=REGISTRY, isolated=True)
    assert b"dusk" in path.read_bytes() and b",  rain" in path.read_bytes()

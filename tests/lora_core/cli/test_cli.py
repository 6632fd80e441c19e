"""The `lorakit` command line: exit codes, formats, fixes, errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_core.cli import cli
from lora_core.testing import make_csv_dataset

ROWS = [("a.png", "cybrpnk,  rain, night"), ("b.png", "cybrpnk, neon city, alley")]


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_csv_dataset(tmp_path / "ds", ROWS)


def test_exit_codes(tmp_path, dataset):
    assert run("lint", str(dataset), "--isolated", "--strict").exit_code == 0  # a double space is only an info
    warned = make_csv_dataset(tmp_path / "warned", [("a.png", "cybrpnk, rain; night"), ("b.png", "cybrpnk, alley")])
    assert run("lint", str(warned), "--isolated").exit_code == 0  # warnings only
    assert run("lint", str(warned), "--isolated", "--strict").exit_code == 1
    assert run("lint", str(warned), "--isolated", "--strict", "--exit-zero").exit_code == 0
    broken = make_csv_dataset(tmp_path / "broken", [("a.png", "")])
    assert run("lint", str(broken), "--isolated").exit_code == 1
    assert run("lint", str(broken), "--isolated", "--exit-zero").exit_code == 0


def test_usage_config_and_dataset_errors_exit_2_without_traceback(tmp_path, dataset):
    for args, message in [
        (["lint", str(tmp_path / "nope")], "no such file or folder"),
        (["lint", str(dataset), "--format", "xml"], "unknown format 'xml'"),
        (["lint", str(dataset), "--select", "ZZ1"], "unknown rule selector 'ZZ1'"),
        (["lint", str(dataset), "-p", "hygiene"], "expected `no:NAME`"),
        (["lint", str(dataset), "--require-plugin", "acme"], "required plugin 'acme' is not installed"),
        (["rule", "LK999"], "no rule 'LK999'"),
    ]:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output + result.stderr
    (dataset.parent / "lorakit.toml").write_text("[lint]\nselect = 3\n")
    result = run("lint", str(dataset))
    assert result.exit_code == 2
    assert result.stderr.startswith("lorakit: error: ") and "lorakit.toml" in result.stderr


def test_fix_and_diff(dataset):
    diff = run("lint", str(dataset), "--isolated", "--diff")
    assert diff.exit_code == 1
    assert '+a.png,"cybrpnk, rain, night"' in diff.stdout and "Would fix 1 problem in 1 file." in diff.stderr
    assert "cybrpnk,  rain, night" in dataset.read_text()
    fixed = run("lint", str(dataset), "--isolated", "--fix", "--format", "concise")
    assert fixed.exit_code == 0 and "Fixed 1 problem in 1 file." in fixed.stdout
    assert run("lint", str(dataset), "--isolated", "--diff").exit_code == 0


def test_select_ignore_and_statistics(dataset):
    result = run("lint", str(dataset), "--isolated", "--select", "LK0", "--format", "concise")
    assert result.stdout.startswith("All checks passed!")
    result = run("lint", str(dataset), "--isolated", "--statistics", "--format", "concise")
    assert "     1  LK101   [*] whitespace" in result.stdout


def test_json_and_output_file(tmp_path, dataset):
    result = run("lint", str(dataset), "--isolated", "--format", "json")
    assert [item["code"] for item in json.loads(result.stdout)] == ["LK101"]
    out = tmp_path / "report.sarif"
    result = run("lint", str(dataset), "--isolated", "--format", "sarif", "-o", str(out))
    assert result.stdout == "" and json.loads(out.read_text())["version"] == "2.1.0"
    assert "wrote sarif report" in result.stderr


def test_github_actions_adds_annotations(dataset):
    result = run("lint", str(dataset), "--isolated", "--format", "concise", env={"GITHUB_ACTIONS": "true"})
    assert "::notice file=" in result.stdout and ": LK101 [info]" in result.stdout


def test_disable_plugin_flag(dataset):
    result = run("lint", str(dataset), "--isolated", "-p", "no:hygiene", "--format", "concise")
    assert result.stdout.startswith("All checks passed!")


def test_rules_rule_and_plugins(registry):
    table = run("rules").stdout
    assert "LK001" in table and "image-missing" in table and "LK109" in table
    rules = json.loads(run("rules", "--format", "json").stdout)
    assert {r["code"] for r in rules} >= set(registry.rules)
    text = run("rule", "lk101").stdout
    assert "LK101 whitespace" in text and "What it does" in text and "Why it matters" in text
    assert json.loads(run("rule", "duplicate-tag", "--format", "json").stdout)["code"] == "LK103"
    plugins = {p["name"]: p for p in json.loads(run("plugins", "--format", "json").stdout)}
    assert plugins["hygiene"]["registers"]["rules"][0] == "LK101"
    assert plugins["core"]["builtin"] and plugins["core"]["status"] == "loaded"
    assert "structure (built-in)" in run("plugins").stdout


def test_version_and_help():
    assert run("--version").stdout.startswith("lorakit, version ")
    assert "lint" in run("--help").stdout
    assert "--unsafe-fixes" in run("lint", "--help").stdout


def test_console_script_writes_everything_before_its_quick_exit(tmp_path, dataset):
    """`lorakit lint` ends with os._exit (no interpreter teardown): the report must still be
    complete, the exit code right, and a closed pipe must not turn into a traceback."""
    import subprocess
    import sys

    entry = [sys.executable, "-c", "from lora_core.cli import main; main()"]
    big = tmp_path / "big" / "metadata.csv"  # more report than a pipe buffer holds
    big.parent.mkdir()
    big.write_text("file_name,text\n" + "".join(f'{i}.png,"cybrpnk,  rain {i}"\n' for i in range(3000)))
    done = subprocess.run([*entry, "lint", str(big), "--isolated", "--format", "json", "--strict"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and len(json.loads(done.stdout)) == 9000
    report = tmp_path / "report.json"
    done = subprocess.run([*entry, "lint", str(big), "--isolated", "--format", "json", "-o", str(report)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and len(json.loads(report.read_text())) == 9000
    reader = subprocess.Popen([*entry, "lint", str(big), "--isolated", "--format", "concise"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stdout.readline()
    reader.stdout.close()  # like `lorakit lint | head -1`
    _, stderr = reader.communicate()
    assert reader.returncode in (0, 1) and b"Traceback" not in stderr
    # Other commands keep the normal exit.
    assert subprocess.run([*entry, "--version"], capture_output=True, text=True).returncode == 0


def test_rule_texts_are_shown_literally_not_as_markup():
    """`[images] min-size` is a config key, not rich markup; `2*rank` is not italics (issue 17)."""
    from click.testing import CliRunner

    from lora_core.cli import cli

    listing = CliRunner().invoke(cli, ["rules"], env={"COLUMNS": "220"})
    assert listing.exit_code == 0 and "Shorter side below [images] min-size" in listing.output
    assert "alpha outside [rank/4, 2*rank]" in listing.output
    explained = CliRunner().invoke(cli, ["rule", "LK705"], env={"COLUMNS": "220"})
    assert explained.exit_code == 0 and "2*rank" in explained.output


def test_fixable_would_fix_and_fixed_are_one_count(tmp_path):
    """The demo's three counts agree: the lint's "N fixable ... M more" is what --diff would fix and
    what --fix fixed, and the edit count is said when one change fixed two problems."""
    import re
    import shutil

    demo = tmp_path / "demo"
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "cyberpunk", demo)
    hint = re.search(r"\[\*\] (\d+) fixable with `--fix`; (\d+) more", run("lint", str(demo)).stdout)
    assert hint, "the example has safe and unsafe fixes"
    fixable = int(hint.group(1)) + int(hint.group(2))
    diff = run("lint", str(demo), "--diff", "--unsafe-fixes")
    would = re.search(r"Would fix (\d+) problems in 1 file \((\d+) edits: some problems were fixed by the same "
                      r"change\)\.", diff.stderr)
    fixed = re.search(r"Fixed (\d+) problems", run("lint", str(demo), "--fix", "--unsafe-fixes").stdout)
    assert would and fixed and int(would.group(1)) == int(fixed.group(1)) == fixable
    assert int(would.group(2)) < fixable


def test_plugin_commands_come_from_the_register_commands_hook():
    """`lorakit generate` is the trainer plugin's (diffusers code lives there), not the core's."""
    from lora_core.cli import _plugin_commands

    assert "generate" not in cli.commands  # not one of the core's own commands
    assert _plugin_commands()["generate"].plugin == "lora"
    listing = run("--help")
    assert "generate" in listing.output and "lint" in listing.output
    helped = run("generate", "--help")
    assert helped.exit_code == 0 and "<lora:NAME:WEIGHT>" in helped.output


def test_a_plugin_cannot_take_a_core_command_name():
    import types

    import click

    from lora_core import hookimpl
    from lora_core.testing import registry_with

    @hookimpl
    def register_commands(register):
        register(click.Command("lint", callback=lambda: None))

    registry = registry_with(types.SimpleNamespace(register_commands=register_commands), names=["usurper"])
    assert registry.plugins["usurper"].status == "failed"
    assert "one of lorakit's own" in (registry.plugins["usurper"].error or "")


def test_lint_restores_the_garbage_collector(dataset):
    import gc

    assert gc.isenabled()
    result = run("lint", str(dataset), "--isolated")
    assert result.exit_code in (0, 1), result.output
    assert gc.isenabled()  # the lint ran without it, the rest of the process keeps it


def test_init_in_a_folder_it_cannot_write_is_one_line(tmp_path, dataset, monkeypatch):
    """Issue 23 #8: a read-only dataset folder was an internal error (PermissionError)."""
    import lora_core.cli.init as init_command

    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(init_command, "atomic_write_text", refuse)  # root writes anywhere: refuse as a mount would
    result = CliRunner().invoke(cli, ["init", str(dataset.parent)])
    assert result.exit_code == 2 and "cannot write it (Permission denied)" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


def test_a_plugin_command_that_raises_names_the_plugin(monkeypatch):
    """Issue 23 #9: a failing plugin command was "internal error, please report it" (to lorakit)."""
    import click

    import lora_core.cli as cli_module
    from lora_core.plugins import PluginCommand

    def explode():
        raise RuntimeError("the model folder is empty")

    commands = {"explode": PluginCommand("explode", click.Command("explode", callback=explode), "acme-tools")}
    monkeypatch.setattr(cli_module, "_commands_of_plugins", commands)
    result = run("explode")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("lorakit: error: command `explode` of plugin 'acme-tools' failed: RuntimeError: "
                                     "the model folder is empty")


def test_no_output_replaces_a_file_of_the_dataset_or_an_input(tmp_path):
    """Issue 23 #6: `export -o` replaced images, lorakit.toml and its own input config; `lint -o
    z.png` replaced an uncaptioned image."""
    import hashlib

    from lora_core.testing import write_photo

    ds = tmp_path / "ds"
    for name in ("a", "b", "z"):
        write_photo(ds / f"{name}.png", size=64)
    (ds / "a.txt").write_text("cybrpnk, rain, night", encoding="utf-8")
    (ds / "b.txt").write_text("cybrpnk, neon, night", encoding="utf-8")
    (ds / "lorakit.toml").write_text('[entities]\ntrigger = "cybrpnk"\n', encoding="utf-8")
    config = tmp_path / "dataset_config.toml"
    config.write_text('[[datasets]]\n[[datasets.subsets]]\nimage_dir = "ds"\ncaption_extension = ".txt"\n'
                      "shuffle_caption = true  # kept\n", encoding="utf-8")
    files = [*sorted(ds.iterdir()), config]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    for target in ("ds/z.png", "ds/a.png", "ds/a.txt", "ds/lorakit.toml", "dataset_config.toml"):
        exported = run("export", "--to", "kohya", str(config), "-o", str(tmp_path / target))
        assert exported.exit_code == 2 and "an output never replaces it" in exported.stderr, target
    for target in ("ds/z.png", "ds/lorakit.toml", "ds/b.txt"):
        linted = run("lint", str(ds), "--format", "json", "-o", str(tmp_path / target))
        assert linted.exit_code == 2 and "an output never replaces it" in linted.stderr, target
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
    assert run("lint", str(ds), "--format", "json", "-o", str(tmp_path / "report.json")).exit_code in (0, 1)


def test_a_trainer_config_never_directs_fixes_out_of_its_folder(tmp_path):
    """Issue 23 #7: `--fix` through a config naming `../` or absolute folders rewrote files there."""
    from lora_core.testing import write_photo

    outside = tmp_path / "elsewhere"
    write_photo(outside / "a.png", size=64)
    (outside / "a.txt").write_text("cybrpnk,  rain, night ", encoding="utf-8")
    config = tmp_path / "downloads" / "dataset_config.toml"
    config.parent.mkdir()
    for image_dir in ("../elsewhere", str(outside)):
        config.write_text(f'[[datasets]]\n[[datasets.subsets]]\nimage_dir = "{image_dir}"\n'
                          'caption_extension = ".txt"\n', encoding="utf-8")
        result = run("lint", str(config), "--fix")
        assert result.exit_code == 2 and "never directs fixes out of its folder" in result.stderr
        assert (outside / "a.txt").read_text(encoding="utf-8") == "cybrpnk,  rain, night "
    assert run("lint", str(outside), "--fix").exit_code in (0, 1)  # the folder itself: fixed
    assert (outside / "a.txt").read_text(encoding="utf-8") == "cybrpnk, rain, night"

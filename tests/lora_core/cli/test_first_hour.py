"""Issue 24, the first hour: a core install's commands say what to install, the listings are not
squeezed into 80 columns when piped, and the command-line conventions ruff users look for."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ["torch", "diffusers", "transformers", "peft", "open_clip", "accelerate", "onnxruntime"]


def core_install(*args: str) -> subprocess.CompletedProcess[str]:
    """`lorakit ARGS` as on a core install: the model libraries cannot be imported."""
    program = ("import sys\n"
               f"for name in {HEAVY!r}: sys.modules[name] = None\n"
               "from lora_core.cli import main\n"
               f"sys.argv = ['lorakit', *{list(args)!r}]\n"
               "main()\n")
    return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)


def test_generate_on_a_core_install_names_the_install_command():
    done = core_install("generate", "a cat", "--base-model", "x")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("lorakit: error: lorakit generate needs torch, diffusers, peft, accelerate: "
                                   "pip install 'lorakit[train]'")


def test_plugins_says_which_extra_each_model_plugin_needs():
    table = core_install("plugins")
    assert table.returncode == 0, table.stderr
    rows: dict[str, str] = {}
    for line in table.stdout.splitlines():
        if line.strip():
            rows.setdefault(line.split()[0], line)  # the plugins table first; the captioners table follows
    assert "needs torch, transformers: pip install 'lorakit[caption]'" in rows["blip"]
    assert "needs torch, open_clip: pip install 'lorakit[coca]'" in rows["coca"]
    assert "needs torch, diffusers, peft, accelerate: pip install 'lorakit[train]'" in rows["lora"]
    assert rows["hygiene"].rstrip().endswith("loaded")
    assert "needs onnxruntime: pip install 'lorakit[wd]'" in rows["wd-tagger"]
    assert "needs torch, transformers: pip install 'lorakit[caption]'" in rows["vlm"]
    assert rows["openai"].rstrip().endswith("loaded")  # the standard library only
    listing = {item["name"]: item for item in json.loads(core_install("plugins", "--format", "json").stdout)}
    assert listing["blip2"]["missing"] == ["torch", "transformers"]
    assert listing["blip2"]["install"] == "pip install 'lorakit[caption]'"
    assert listing["core"]["missing"] == [] and listing["core"]["install"] is None
    assert listing["openai"]["missing"] == [] and listing["openai"]["install"] is None


@pytest.mark.parametrize("command", [["rules"], ["plugins"]])
def test_listings_piped_are_one_row_a_line(command):
    """Issue 24 #14: piped, rich squeezed the tables into 80 columns and wrapped every row."""
    done = subprocess.run([sys.executable, "-m", "lora_core", *command], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if command == ["rules"]:
        assert len(lines) >= 60 and all(line.split()[0].startswith("LK") for line in lines[1:])
    else:
        assert any(line.startswith(" hygiene (built-in)") and "LK116" in line for line in lines)


# -- the command-line conventions ruff users look for (issue 24 #12) -------------------------------


def _cli(*args: str):
    from click.testing import CliRunner

    from lora_core.cli import cli

    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def demo(tmp_path):
    import shutil
    from pathlib import Path

    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "cyberpunk", tmp_path / "demo",
                    ignore=shutil.ignore_patterns(".lorakit_cache"))
    return tmp_path / "demo"


def test_output_format_quiet_and_statistics(demo):
    concise = _cli("lint", str(demo), "--output-format", "concise")
    assert concise.exit_code == 1 and "LK305 [error]" in concise.stdout and "Found 43 problems" in concise.stdout
    quiet = _cli("lint", str(demo), "--format", "concise", "-q")
    assert quiet.stdout.splitlines() == concise.stdout.splitlines()[:-2]  # the violations, not the summary
    statistics = _cli("lint", str(demo), "--statistics")
    lines = statistics.stdout.splitlines()
    assert not any("│" in line or line.startswith("  ") and ":" in line.split()[0] for line in lines)
    assert any(line.split()[1:2] == ["LK201"] for line in lines if line.strip())
    assert lines[-2].startswith("Found 43 problems")


def test_show_fixes_lists_what_was_fixed_per_rule(demo):
    diffed = _cli("lint", str(demo), "--diff", "--show-fixes")
    assert "Would fix 26 problems in 1 file (17 edits: some problems were fixed by the same change):" in diffed.stderr
    assert "× LK101 (whitespace)" in diffed.stderr
    fixed = _cli("lint", str(demo), "--fix", "--show-fixes", "--format", "concise")
    assert "Fixed 26 problems in 1 file" in fixed.stdout and "× LK101 (whitespace)" in fixed.stdout


def test_no_cache_writes_no_image_cache(demo):
    _cli("lint", str(demo), "--no-cache", "--select", "LK6")
    assert not (demo / ".lorakit_cache").exists()
    _cli("lint", str(demo), "--select", "LK6")
    assert (demo / ".lorakit_cache").exists()


def test_show_settings_says_what_is_pinned_and_what_is_inferred(demo, tmp_path):
    import shutil
    from pathlib import Path

    shown = _cli("lint", str(demo), "--show-settings")
    assert shown.exit_code == 0, shown.output
    assert f"  trigger       `cybrpnk` (pinned: [entities] trigger in {demo / 'lorakit.toml'})" in shown.stdout
    assert "  model         unknown: tag captions are checked against CLIP's 75 tokens" in shown.stdout
    kohya = tmp_path / "kohya"
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "kohya-set", kohya,
                    ignore=shutil.ignore_patterns(".lorakit_cache"))
    inferred = _cli("lint", str(kohya), "--show-settings").stdout
    assert "  trigger       trigger `wtrclr` inferred from 8 of 10 captions in concept folder `8_wtrclr" in inferred
    assert "  config file   no config file" in inferred


def test_usage_errors_are_one_lorakit_error_line():
    wrong = subprocess.run([sys.executable, "-m", "lora_core", "lint", "--format", "nope", "."],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("lorakit: error: Invalid value for --format: unknown format 'nope'")
    assert len(wrong.stderr.strip().splitlines()) == 1
    unknown = subprocess.run([sys.executable, "-m", "lora_core", "lint", "--bogus"], capture_output=True, text=True,
                             timeout=120)
    assert unknown.returncode == 2 and unknown.stderr.startswith("lorakit: error: No such option '--bogus'")


def test_watch_lints_again_when_a_caption_changes_and_ctrl_c_ends_it(demo):
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "lora_core", "lint", str(demo), "--watch", "-q", "--format",
                                "concise"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (demo / ".lorakit_cache").exists():
            time.sleep(0.2)  # the first lint has run (it writes the image cache)
        time.sleep(1.5)
        with (demo / "metadata.csv").open("a", encoding="utf-8") as handle:
            handle.write("extra.png,cybrpnk\n")
        time.sleep(6)
    finally:
        # Ctrl-C in a terminal signals the whole foreground process group: the watcher and its lint
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert err.count("lorakit: watching") == 2 and "metadata.csv changed: linting again" in err
    assert "`extra.png` does not exist" in out


def test_progress_shows_on_a_terminal_after_the_delay_and_never_in_a_pipe(monkeypatch):
    """Issue 24 #14: reading hundreds of images was silence; on a terminal (stderr) a progress
    line appears once the work has run `DELAY` seconds, and is erased at the end."""
    import io

    from lora_core import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = iter([0.0, 0.5, 2.5, 2.7, 3.0])
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    screen = Terminal()
    with progress.show_on_terminal(True, screen):
        for done in (1, 2, 3, 4, 5):
            progress.step("reading images", done, 5)
    text = screen.getvalue()
    assert "reading images 1/5" not in text and "reading images 2/5" not in text  # within the first 2 s
    assert "\r\x1b[2Klorakit: reading images 3/5 (60%)" in text and "reading images 5/5 (100%)" in text
    assert text.endswith("\r\x1b[2K")  # erased: the report below starts on a clean line
    piped = io.StringIO()
    with progress.show_on_terminal(False, piped):
        progress.step("reading images", 5, 5)
    assert piped.getvalue() == ""

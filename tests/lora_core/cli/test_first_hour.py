"""Issue 24, the first hour: a core install's commands say what to install, the listings are not
squeezed into 80 columns when piped, and the command-line conventions ruff users look for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["torch", "diffusers", "transformers", "peft", "open_clip", "accelerate"]


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
    listing = {item["name"]: item for item in json.loads(core_install("plugins", "--format", "json").stdout)}
    assert listing["blip2"]["missing"] == ["torch", "transformers"]
    assert listing["blip2"]["install"] == "pip install 'lorakit[caption]'"
    assert listing["core"]["missing"] == [] and listing["core"]["install"] is None


@pytest.mark.parametrize("command", [["rules"], ["plugins"]])
def test_listings_piped_are_one_row_a_line(command):
    """Issue 24 #14: piped, rich squeezed the tables into 80 columns and wrapped every row."""
    done = subprocess.run([sys.executable, "-m", "lora_core", *command], capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if command == ["rules"]:
        assert len(lines) >= 60 and all(line.split()[0].startswith("LK") for line in lines[1:])
    else:
        assert any(line.startswith(" hygiene (built-in)") and "LK116" in line for line in lines)

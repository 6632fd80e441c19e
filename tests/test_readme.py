"""The README's console blocks are what the commands print (issue 24: stale outputs). A README
line that ends with `...` stands for the real line it begins; a line `...` alone for any lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```console\n\$ (lorakit [^\n]+)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, list[str]]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(command, shown.splitlines()) for command, shown in BLOCK.findall(text)]


def matches(shown: list[str], real: list[str]) -> bool:
    at = 0
    for index, line in enumerate(shown):
        if line == "...":
            following = shown[index + 1] if index + 1 < len(shown) else None
            while at < len(real) and (following is None or not _same(following, real[at])):
                at += 1
            continue
        if at >= len(real) or not _same(line, real[at]):
            return False
        at += 1
    return at == len(real)


def _same(shown: str, real: str) -> bool:
    return real.startswith(shown[:-3]) if shown.endswith("...") else shown == real


@pytest.mark.parametrize("command, shown", blocks(), ids=[c for c, _ in blocks()])
def test_readme_console_blocks_are_the_real_output(command, shown, tmp_path):
    import shutil

    for example in ("cyberpunk", "kohya-set"):  # a copy: no image cache left in examples/
        shutil.copytree(REPO / "examples" / example, tmp_path / "examples" / example,
                        ignore=shutil.ignore_patterns(".lorakit_cache"))
    args = command.split()[1:]
    done = subprocess.run([sys.executable, "-m", "lora_core", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    real = done.stdout.splitlines()
    assert matches(shown, real), "README shows:\n" + "\n".join(shown) + "\n\nthe command prints:\n" + done.stdout

"""docs/offline-training.md, executed: its bash block's commands run as written (in a temporary
folder), and each does what the page says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def documented_commands() -> list[list[str]]:
    text = (REPO / "docs" / "offline-training.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    joined = block.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_offline_walkthrough_runs_as_documented(tmp_path):
    commands = documented_commands()
    assert [c[0] for c in commands] == ["python", "python", "lorakit", "lorakit", "lorakit"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    bin_dir = Path(sys.executable).parent
    for command in commands:
        program = {"python": sys.executable, "lorakit": str(bin_dir / "lorakit")}[command[0]]
        args = [str(REPO / a) if a.startswith("examples/") else a for a in command[1:]]
        run = subprocess.run([program, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (command, run.stdout[-2000:], run.stderr[-2000:])
    run_folder = tmp_path / "runs" / "offline-ds-offline"
    assert {"pytorch_lora_weights.safetensors", "offline-ds.safetensors", "loss.csv", "loss.png", "config.json",
            "lint-report.txt"} <= {p.name for p in run_folder.iterdir()}
    assert list((tmp_path / "build" / "samples").glob("*.png"))

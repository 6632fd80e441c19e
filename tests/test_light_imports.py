"""The lint path stays light: no torch, diffusers or transformers, whatever is installed."""

from __future__ import annotations

import subprocess
import sys

from lora_core.testing import make_csv_dataset

# numpy and Pillow are allowed while image rules (LK6xx) read pixels, never at startup (see --help).
HEAVY = ("torch", "diffusers", "transformers", "torchvision", "open_clip", "peft", "accelerate")

PROBE = """
import sys
from lora_core.cli import cli
try:
    cli(prog_name="lorakit", args=sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:", ",".join(heavy))
"""


def probe(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                         capture_output=True, text=True, check=True).stdout
    return out.rsplit("HEAVY:", 1)[1].strip()


def test_lint_imports_nothing_heavy(tmp_path):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk,  rain")])
    assert probe("lint", str(path), "--isolated") == ""
    assert probe("lint", str(path), "--isolated", "--format", "sarif") == ""


def test_help_imports_nothing_heavy_and_no_rich():
    code = ("import sys\nfrom lora_core.cli import cli\n"
            "try:\n    cli(prog_name='lorakit', args=['--help'])\nexcept SystemExit:\n    pass\n"
            "loaded = [m for m in ('rich', 'numpy', 'PIL') if m in sys.modules]\n"
            "print('LOADED: ' + ','.join(loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED:")

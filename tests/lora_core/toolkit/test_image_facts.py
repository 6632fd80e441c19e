"""The image reader's process pool (lora_core.toolkit.image_facts)."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def test_a_lint_killed_while_reading_images_takes_its_decoders_with_it(tmp_path):
    """kill -9 on a lint whose image pool is decoding: no decoder may live on holding stdout open
    (a `--watch` run stopped by Ctrl-C kills its lint this way; whatever reads the output would wait)."""
    if not sys.platform.startswith("linux"):
        return  # PR_SET_PDEATHSIG is Linux's; elsewhere nothing to check
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file_name,text"]
    for i in range(400):  # noise PNGs: slow to decode, none a duplicate of another
        Image.fromarray(rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png",
                                                                                  compress_level=1)
        rows.append(f"{i:03d}.png,a photo {i}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "lorakit.toml").write_text("[images]\nworkers = 2\n", encoding="utf-8")
    command = [sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--config", str(tmp_path / "lorakit.toml"),
               "--select", "LK6", "--no-cache"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        children: list[str] = []
        deadline = time.monotonic() + 60
        while len(children) < 2 and time.monotonic() < deadline and process.poll() is None:
            listing = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            children = listing.read_text().split() if listing.exists() else []
            time.sleep(0.01)
        assert process.poll() is None and len(children) >= 2, "the lint finished before its decoders could be seen"
        time.sleep(0.3)  # the decoders are busy
        process.send_signal(signal.SIGKILL)
        process.wait()
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready and process.stdout.read() == b"", "a decoder outlived the killed lint, holding stdout"
    for child in children:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)

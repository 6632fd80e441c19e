"""The image reader's process pool (lora_core.toolkit.image_facts)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.processes import children_of, kill_and_expect_no_survivor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_lint_killed_while_reading_images_takes_its_decoders_with_it(tmp_path):
    """kill -9 on a lint whose image pool is decoding: no decoder may live on holding stdout open
    (a `--watch` run stopped by Ctrl-C kills its lint this way; whatever reads the output would wait)."""
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
        children = children_of(process, count=2)
        assert process.poll() is None and len(children) >= 2, "the lint finished before its decoders could be seen"
        time.sleep(0.3)  # the decoders are busy
        kill_and_expect_no_survivor(process, children, "a decoder")

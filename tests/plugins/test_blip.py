"""The blip captioner on a tiny random BLIP built offline and loaded through the real
from-folder path (recipe: shared/docs/reference/verified-captioner-stack.md, section 3.1)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lora_core
from lora_core.cli import cli
from lora_core.testing import write_pngs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> Path:
    from lora_core.testing.tiny_models import tiny_blip

    torch.set_num_threads(1)
    return tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


def test_blip_captions_a_folder_through_the_command(tiny_blip, tmp_path):
    folder = write_pngs(tmp_path / "imgs", 5)
    config = '[entities]\ntrigger = "cybrpnk"\n[lint]\nselect = ["LK0"]\n'
    (folder / "lorakit.toml").write_text(config, encoding="utf-8")
    result = CliRunner().invoke(cli, ["caption", str(folder), "--captioner", "blip", "--model", str(tiny_blip),
                                      "--batch-size", "2", "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((folder / "metadata.csv").read_text(encoding="utf-8"), newline="")))
    assert [r["file_name"] for r in rows] == [f"img_{i}.png" for i in range(5)]
    # Random weights caption nonsense, but every draft went through post-processing: trigger in front.
    assert all(r["text"].startswith("cybrpnk") for r in rows), rows


def test_blip_prompt_is_stripped_and_batches_match(tiny_blip, tmp_path):
    from lorakit_blip import BlipCaptioner

    from lora_core.captioning import list_images

    captioner = BlipCaptioner(model=str(tiny_blip), device="cpu", max_new_tokens=6, num_beams=1)
    items = list_images(write_pngs(tmp_path / "imgs", 3))
    plain = captioner.caption(items)
    prompted = captioner.caption(items, prompt="a picture of")
    assert len(plain) == len(prompted) == 3 and all(isinstance(c, str) for c in plain)
    assert not any(c.startswith("a picture of") for c in prompted)
    assert captioner.caption(items[:1]) == plain[:1]  # batch size does not change a caption


def test_half_precision_on_cpu_is_refused(tiny_blip):
    from lorakit_blip import BlipCaptioner

    with pytest.raises(lora_core.PluginError, match="--dtype fp16 on CPU: half precision needs a CUDA device"):
        BlipCaptioner(model=str(tiny_blip), device="cpu", dtype="fp16")


def test_missing_model_is_one_line_fast_and_names_the_fix(tmp_path):
    folder = write_pngs(tmp_path / "imgs", 1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "caption", str(folder), "--captioner", "blip",
                          "--model", "Salesforce/blip-image-captioning-base", "--device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2
    (line,) = [ln for ln in run.stderr.splitlines() if ln.startswith("lorakit: error:")]
    assert "captioner blip: model 'Salesforce/blip-image-captioning-base' is not in the local Hugging Face cache" \
        in line and "--model /path/to/folder" in line
    assert "Traceback" not in run.stderr
    # The import of torch/transformers dominates; the failed lookup itself is immediate.
    assert time.perf_counter() - started < 60


def test_unreachable_hub_fails_in_seconds_not_minutes(tmp_path, monkeypatch):
    import socket

    from lorakit_blip import BlipCaptioner

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    started = time.perf_counter()
    with pytest.raises(lora_core.PluginError, match="cannot be reached; download it once, or pass --model"):
        BlipCaptioner(model="base", device="cpu")
    assert time.perf_counter() - started < 5

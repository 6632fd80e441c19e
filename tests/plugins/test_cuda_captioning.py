"""Captioning on a CUDA GPU: half precision really used, DataLoader workers with pinned memory,
and the same captions as fp32 for greedy decoding of a tiny model (skipped without a GPU)."""

from __future__ import annotations

import pytest

from lora_core.testing import write_png

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    from lora_core.testing.tiny_models import tiny_blip

    return tiny_blip(tmp_path_factory.mktemp("tiny-blip"))


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_blip_runs_in_half_precision_on_cuda(tiny_blip, tmp_path, dtype):
    from lorakit_blip import BlipCaptioner

    from lora_core.captioning import list_images, run_captioner

    if dtype == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    for i in range(6):
        write_png(tmp_path / "imgs" / f"{i}.png", 40 + i, 48, (200, 30 * i, 90))
    captioner = BlipCaptioner(model=str(tiny_blip), device="cuda", dtype=dtype, max_new_tokens=5, num_beams=1)
    assert next(captioner.model.parameters()).dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    items = list_images(tmp_path / "imgs")
    (with_workers,) = run_captioner(captioner, items, [None], batch_size=2, workers=2)
    (in_process,) = run_captioner(captioner, items, [None], batch_size=2, workers=0)
    assert with_workers == in_process and len(in_process) == 6


def test_coca_beam_search_on_cuda(tmp_path):
    pytest.importorskip("open_clip")
    from lorakit_coca import CocaCaptioner

    from lora_core.captioning import list_images
    from lora_core.testing.tiny_models import tiny_coca

    folder = tiny_coca(tmp_path / "coca")
    for i in range(3):
        write_png(tmp_path / "imgs" / f"{i}.png", 40 + i, 48, (20, 30 * i, 190))
    captioner = CocaCaptioner(model=str(folder), device="cuda", dtype="fp16", max_new_tokens=6)
    assert len(captioner.caption(list_images(tmp_path / "imgs"))) == 3

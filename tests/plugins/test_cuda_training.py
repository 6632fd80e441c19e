"""Training on a CUDA GPU (skipped without one): fp16 with a gradient scaler keeps LoRA weights
in fp32 over half-precision base weights, bf16 where supported, and xformers attention when the
extra is installed and works."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from lora_core.testing.tiny_models import tiny_sd

    return tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


def trainer_for(tiny_sd, tmp_path, **settings):
    import types

    from lorakit_lora.data import Example
    from lorakit_lora.loop import Trainer
    from lorakit_lora.settings import TrainSettings

    from lora_core.testing import write_photo

    examples = [Example(write_photo(tmp_path / f"{i}.png", str(i), 64), f"cybrpnk, neon {i}", f"{i}.png")
                for i in range(4)]
    job = types.SimpleNamespace(device="cuda", allow_pickle=False, run_dir=tmp_path / "run", resume=False,
                                cache_dir=tmp_path / "cache")
    trainer = Trainer(job, TrainSettings(base_model=str(tiny_sd), resolution=64, batch_size=2, rank=4, alpha=4,
                                         save_every_epochs=0, **settings), examples, [], lambda m: None)
    trainer.setup()
    return trainer


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_training_keeps_lora_weights_fp32(tiny_sd, tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    trainer = trainer_for(tiny_sd, tmp_path, mixed_precision=precision)
    half = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    assert all(p.dtype == torch.float32 for p in trainer.trainable)
    assert any(p.dtype == half for p in trainer.base.unet.parameters() if not p.requires_grad)
    losses = [trainer.train_step(batch) for batch in trainer._my_batches(0) * 3]
    assert all(loss == loss and loss < 10 for loss in losses)  # finite
    if precision == "fp16":
        assert trainer.accelerator.scaler is not None


def test_xformers_attention_when_installed(tiny_sd, tmp_path):
    pytest.importorskip("xformers")
    trainer = trainer_for(tiny_sd, tmp_path, mixed_precision="fp16", attention="xformers")
    assert trainer.attention == "xformers"
    assert trainer.train_step(trainer._my_batches(0)[0]) > 0

"""Target models: names people and trainer configs use, and each encoder's budget."""

from __future__ import annotations

import pytest

from lora_core.toolkit.models import model_from_path, model_from_trainer, model_keys, model_named


@pytest.mark.parametrize("name, key, budget", [
    ("sd15", "sd1", 75), ("SD 1.5", "sd1", 75), ("v2", "sd2", 75), ("SDXL", "sdxl", 75), ("pony", "pony", 75),
    ("NoobAI", "illustrious", 75), ("sd3.5", "sd3", 256), ("flux-dev", "flux", 512),
    ("FLUX.1 schnell", "flux-schnell", 256), ("krea", "flux", 512), ("qwen-image", "qwen-image", 512),
])
def test_names(name, key, budget):
    model = model_named(name)
    assert model is not None and model.key == key and model.budget == budget


def test_trainer_values():
    assert model_from_trainer("STABLE_DIFFUSION_XL_10_BASE").key == "sdxl"  # OneTrainer
    assert model_from_trainer("FLUX_DEV_1").key == "flux"
    assert model_from_trainer("sdxl-lora").key == "sdxl"  # lora-scripts model_train_type
    assert model_from_trainer("krea2").key == "long-encoder"  # ai-toolkit arch
    assert model_from_trainer("legacy").key == "sd1"  # SimpleTuner model_family
    assert model_from_trainer("no such model") is None and model_from_trainer(5) is None
    assert model_from_path("/models/ponyDiffusionV6XL.safetensors").key == "pony"
    assert model_from_path("black-forest-labs/FLUX.1-dev").key == "flux"
    assert model_from_path("krea/Krea-2-Raw").key == "long-encoder"


def test_token_length_extends_a_clip_budget_only():
    assert model_named("sdxl").with_token_length(225).budget == 225
    assert model_named("flux").with_token_length(225).budget == 512
    assert set(model_keys()) >= {"sd1", "sdxl", "flux", "sd3"}

"""The kohya file in kohya's own shape (issue 17, part 2): SDXL U-Net modules under their original
(SAI) names, the `[train] targets` presets against the full-size architectures (kohya's 192 SD 1.5
U-Net modules), and the metadata kohya writes and clients read (A1111's sshs hashes first)."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
peft = pytest.importorskip("peft")

from lorakit_lora.export import kohya_tensors, write_kohya  # noqa: E402
from lorakit_lora.settings import TARGET_PRESETS, TrainSettings  # noqa: E402

from lora_core.toolkit.sd_names import sai_unet_path  # noqa: E402


def with_lora(model, targets, seed=0):
    torch.manual_seed(seed)
    model.add_adapter(peft.LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=list(targets)))
    with torch.no_grad():  # lora_B starts at zero: give it values, so the LoRA changes something
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    return model


def test_sdxl_unet_keys_are_the_original_sai_names(tmp_path):
    from diffusers import UNet2DConditionModel

    from lora_core.testing.tiny_models import tiny_sdxl_topology

    folder = tiny_sdxl_topology(tmp_path / "xl")  # SDXL's exact block layout
    unet = with_lora(UNet2DConditionModel.from_pretrained(folder, subfolder="unet"), TARGET_PRESETS["kohya"][0])
    names = {k.split(".")[0] for k in kohya_tensors(unet, [], 4.0, sdxl=True)}
    # SDXL: input_blocks 4, 5, 7, 8 hold transformers (levels 1 and 2), the middle block, output_blocks 0-5
    blocks = {"_".join(n.split("_")[2:6]) for n in names}
    assert blocks == {"input_blocks_4_1", "input_blocks_5_1", "input_blocks_7_1", "input_blocks_8_1",
                      "middle_block_1_transformer", "middle_block_1_proj", "output_blocks_0_1", "output_blocks_1_1",
                      "output_blocks_2_1", "output_blocks_3_1", "output_blocks_4_1", "output_blocks_5_1"}
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q" in names
    assert "lora_unet_input_blocks_4_1_proj_in" in names and "lora_unet_output_blocks_0_1_proj_out" in names
    assert not any("down_blocks" in n or "up_blocks" in n for n in names)
    assert sai_unet_path("conv_in", 2) == "conv_in"


def test_diffusers_loads_the_sai_named_sdxl_file_like_its_own(tmp_path):
    """The SAI names are not a private format: diffusers' own converter reads them back into the
    same U-Net output as the LoRA folded in by hand."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from safetensors.torch import save_file

    from lora_core.testing.tiny_models import tiny_sdxl_topology

    folder = tiny_sdxl_topology(tmp_path / "xl")
    trained = with_lora(UNet2DConditionModel.from_pretrained(folder, subfolder="unet"), TARGET_PRESETS["kohya"][0])
    tensors = kohya_tensors(trained, [], 4.0, sdxl=True)
    save_file(tensors, str(tmp_path / "xl_lora.safetensors"))
    generator = torch.Generator().manual_seed(0)
    sample, hidden = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 77, 96, generator=generator)
    extra = {"text_embeds": torch.randn(1, 64, generator=generator),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    with torch.no_grad():
        expected = trained(sample, torch.tensor([500]), hidden, added_cond_kwargs=extra).sample
        pipeline = StableDiffusionXLPipeline.from_pretrained(folder)
        before = pipeline.unet(sample, torch.tensor([500]), hidden, added_cond_kwargs=extra).sample
        pipeline.load_lora_weights(str(tmp_path / "xl_lora.safetensors"))
        after = pipeline.unet(sample, torch.tensor([500]), hidden, added_cond_kwargs=extra).sample
    assert (after - before).abs().max() > 1e-5  # the LoRA was applied ...
    assert torch.allclose(after, expected, atol=1e-5), (after - expected).abs().max()  # ... every module of it


@pytest.mark.parametrize("preset, unet_modules, text_modules", [("attention", 128, 48), ("kohya", 192, 72)])
def test_target_presets_on_the_full_size_sd15(tmp_path, preset, unet_modules, text_modules):
    """Counted on the real SD 1.5 architecture (meta device, no weights): kohya's default LoRA
    reports 192 U-Net and 72 text-encoder modules; the attention preset is 128 and 48."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from lorakit_lora.architectures import write_config_folder
    from peft.tuners.tuners_utils import check_target_module_exists
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = write_config_folder(tmp_path / "sd15", "sd15")
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    settings = TrainSettings.from_config({"targets": preset})

    def matched(model, targets):
        config = peft.LoraConfig(target_modules=list(targets))
        return sum(1 for name, module in model.named_modules()
                   if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and check_target_module_exists(config,
                                                                                                              name))

    assert matched(unet, settings.unet_targets) == unet_modules
    assert matched(text, settings.text_encoder_targets) == text_modules
    explicit = TrainSettings.from_config({"targets": "kohya", "unet-targets": ["to_q"]})
    assert explicit.unet_targets == ["to_q"] and explicit.text_encoder_targets == TARGET_PRESETS["kohya"][1]


def test_metadata_kohya_writes_and_the_hashes_a1111_reads(tmp_path):
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    from lora_core.testing.tiny_models import tiny_sd

    folder = tiny_sd(tmp_path / "sd", prediction_type="v_prediction")
    unet = with_lora(UNet2DConditionModel.from_pretrained(folder, subfolder="unet"), TARGET_PRESETS["attention"][0])
    settings = TrainSettings.from_config({"clip-skip": 2, "learning-rate": 2e-4})
    base = SimpleNamespace(version="sd_v2", prediction_type="v_prediction", source=str(folder))
    example = SimpleNamespace(image=tmp_path / "10_cat" / "a.png", caption="cat, sofa", repeats=10)
    path = write_kohya(tmp_path / "cat.safetensors", unet, [], settings, base, [example], {"name": "cat"}, 120, 3)
    with safe_open(str(path), "pt") as handle:
        metadata = handle.metadata()
    assert metadata["ss_output_name"] == "cat" and metadata["ss_max_train_steps"] == "120"
    assert metadata["ss_clip_skip"] == "2" and metadata["modelspec.encoder_layer"] == "2"
    assert metadata["ss_unet_lr"] == "0.0002" and metadata["ss_text_encoder_lr"] == "None"
    assert json.loads(metadata["ss_network_args"]) == {"targets": "attention"}
    # SD 2.x v-prediction, recorded the way kohya records it
    assert (metadata["ss_v2"], metadata["ss_v_parameterization"]) == ("True", "True")
    assert metadata["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert metadata["modelspec.prediction_type"] == "v" and metadata["modelspec.sai_model_spec"] == "1.0.1"
    # A1111 and the additional-networks extension hash the tensor data after the header: the same
    # number whatever metadata the file carries
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    assert metadata["sshs_model_hash"] == hashlib.sha256(data[8 + header:]).hexdigest()
    assert len(metadata["sshs_legacy_hash"]) == 8 and int(metadata["sshs_legacy_hash"], 16) >= 0

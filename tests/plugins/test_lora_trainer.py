"""`lorakit train` with the `lora` trainer on a tiny SD-1.x-shaped pipeline built offline and loaded
through the same from-folder path as a real model: the lint gate, training, both output files
reloaded by diffusers (alpha kept, scale honoured), kohya names and metadata, exact resume after
a kill, refusals (pickle, fp16 on CPU), v-prediction, and two-process accelerate training."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_core.cli import cli
from lora_core.errors import PluginError
from lora_core.testing import make_csv_dataset, write_png

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

TRAIN = """
[entities]
trigger = "cybrpnk"
[train]
base-model = "{base}"
epochs = {epochs}
rank = 8
alpha = 16
resolution = 64
batch-size = 2
seed = 3
{extra}
"""


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    from lora_core.testing.tiny_models import tiny_sd

    torch.set_num_threads(1)
    return tiny_sd(tmp_path_factory.mktemp("tiny-sd"))


def dataset(folder: Path, base: Path, epochs: int = 2, extra: str = "", count: int = 6,
            captions: list[str] | None = None) -> Path:
    captions = captions or [f"cybrpnk, neon city street, rain, light {i}" for i in range(count)]
    rows = [(f"img_{i}.png", caption) for i, caption in enumerate(captions)]
    make_csv_dataset(folder, rows)
    for i in range(len(rows)):
        write_png(folder / f"img_{i}.png", 64 + 32 * (i % 2), 64, ((40 * i) % 256, 90, 200))
    (folder / "lorakit.toml").write_text(TRAIN.format(base=base, epochs=epochs, extra=extra), encoding="utf-8")
    return folder


def run_train(args: list[str], cwd: Path):
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, ["train", *args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_lint_errors_block_training_before_any_model_loads(tiny_sd, tmp_path, monkeypatch):
    import lorakit_lora.models

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model was loaded although lint failed")

    monkeypatch.setattr(lorakit_lora.models, "load_base_model", must_not_load)
    folder = dataset(tmp_path / "ds", tiny_sd, captions=["neon city", "cybrpnk, rain", "cybrpnk, fog"])
    result = run_train([str(folder)], tmp_path)
    assert result.exit_code == 1
    assert "LK305" in result.stdout and "training blocked: 1 lint error(s)" in result.stderr
    assert not (tmp_path / "runs").exists()


def kohya_file(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()  # noqa: SIM118 (not a dict)


def unet_output(unet, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    hidden = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        return unet(sample, torch.tensor([500]), hidden).sample


def merged_unet(base: Path, tensors: dict):
    """The UNet with each LoRA folded in by hand: W + alpha/rank * up @ down (the ground truth)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    modules = {name.replace(".", "_"): module for name, module in unet.named_modules()}
    for key, down in tensors.items():
        if not key.endswith(".lora_down.weight") or not key.startswith("lora_unet_"):
            continue
        stem = key[: -len(".lora_down.weight")]
        up, alpha = tensors[stem + ".lora_up.weight"], float(tensors[stem + ".alpha"])
        module = modules[stem[len("lora_unet_"):]]
        with torch.no_grad():
            module.weight += (alpha / down.shape[0]) * (up.float() @ down.float())
    return unet


@pytest.fixture(scope="module")
def trained(tiny_sd, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("train")
    folder = dataset(work / "ds", tiny_sd, extra='validation-split = 0.2\nvalidation-prompts = ["cybrpnk, neon"]\n'
                                               "sample-steps = 2\n")
    result = run_train([str(folder), "--tag", "v1.2-prompt-fix"], work)
    assert result.exit_code == 0, result.output
    return work / "runs" / "ds-v1.2-prompt-fix"


def test_training_reports_loading_and_step_progress(tiny_sd, tmp_path):
    """Issue 24 #9: the model load and each stretch of steps are said (loss, rate, time left)."""
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1)
    result = run_train([str(folder), "--tag", "p"], tmp_path)
    assert result.exit_code == 0, result.output
    assert f"lorakit: loading base model {tiny_sd}" in result.stderr
    assert re.search(r"lorakit: step 1/3 \(33%\): loss \d\.\d{4}, lr 0\.0001, \d+\.\d\d s/step, \d+ s left "
                     r"\(the first epoch also encodes and caches the latents\)", result.stderr), result.stderr
    assert "lorakit: step 3/3 (100%)" in result.stderr


def test_training_writes_a_complete_run_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"pytorch_lora_weights.safetensors", "ds.safetensors", "loss.csv", "loss.png", "config.json",
            "lint-report.txt", "samples-final.png", "checkpoints"} <= names
    rows = list(csv.DictReader(io.StringIO((trained / "loss.csv").read_text(encoding="utf-8"))))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(float(r["train_loss"]) > 0 and float(r["validation_loss"]) > 0 for r in rows)
    assert json.loads((trained / "config.json").read_text())["tag"] == "v1.2-prompt-fix"


def test_kohya_file_names_alpha_and_metadata(trained):
    tensors, metadata = kohya_file(trained / "ds.safetensors")
    assert tensors and all(k.startswith("lora_unet_") for k in tensors)
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_down.weight" in tensors
    alphas = {float(v) for k, v in tensors.items() if k.endswith(".alpha")}
    assert alphas == {16.0}  # the real alpha, not the rank
    assert metadata["ss_network_dim"] == "8" and metadata["ss_network_alpha"] == "16.0"
    assert metadata["ss_base_model_version"] == "sd_v1" and metadata["modelspec.architecture"].endswith("/lora")
    frequency = json.loads(metadata["ss_tag_frequency"])
    assert frequency["ds"]["cybrpnk"] == 5  # five training images (one held out)
    assert json.loads(metadata["ss_dataset_dirs"]) == {"ds": {"n_repeats": 1, "img_count": 5}}
    assert metadata["lorakit.run_tag"] == "v1.2-prompt-fix" and len(metadata["lorakit.caption_sha256"]) == 64
    assert json.loads(metadata["lorakit.lint_summary"])["error"] == 0
    assert metadata["lorakit.allow_lint_errors"] == "False"


def test_both_files_reload_in_diffusers_at_full_strength_and_scale(trained, tiny_sd):
    from diffusers import StableDiffusionPipeline

    tensors, _ = kohya_file(trained / "ds.safetensors")
    expected = unet_output(merged_unet(tiny_sd, tensors))
    for file in ("pytorch_lora_weights.safetensors", "ds.safetensors"):
        pipeline = StableDiffusionPipeline.from_pretrained(tiny_sd, safety_checker=None, requires_safety_checker=False)
        base = unet_output(pipeline.unet)
        pipeline.load_lora_weights(str(trained / file), adapter_name="lk")
        full = unet_output(pipeline.unet)
        assert (full - base).abs().max() > 1e-5, file  # the LoRA changes the output
        assert torch.allclose(full, expected, atol=1e-5), (file, (full - expected).abs().max())  # alpha kept
        pipeline.set_adapters(["lk"], adapter_weights=[0.7])
        partial = unet_output(pipeline.unet)
        ratio = float((partial - base).norm() / (full - base).norm())
        assert ratio == pytest.approx(0.7, abs=0.02), file


def test_resume_after_a_kill_reproduces_the_uninterrupted_losses(tiny_sd, tmp_path):
    extra = "save-every-steps = 1\nsave-every-epochs = 0\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    straight = dataset(tmp_path / "a" / "ds", tiny_sd, epochs=3, extra=extra)
    command = [sys.executable, "-m", "lora_core.cli", "train", str(straight), "--tag", "x"]
    run = subprocess.run(command, cwd=tmp_path / "a", env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    interrupted = dataset(tmp_path / "b" / "ds", tiny_sd, epochs=3, extra=extra)
    command = [sys.executable, "-m", "lora_core.cli", "train", str(interrupted), "--tag", "x"]
    process = subprocess.Popen(command, cwd=tmp_path / "b", env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "b" / "runs" / "ds-x" / "checkpoints"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not len(list(checkpoints.glob("step-000000[4-9]*.pt"))):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no cleanup of any kind
    process.wait()
    assert not (checkpoints.parent / "ds.safetensors").exists(), "the run finished before it could be killed"
    # what a kill in the middle of an atomic write leaves (issue 23 #15: it stayed after --resume)
    (checkpoints / ".step-0000009.rank0.pt.abc123.lorakit-tmp").write_bytes(b"half a checkpoint")
    (checkpoints.parent / ".loss.csv.def456.lorakit-tmp").write_bytes(b"half a table")
    resumed = subprocess.run(command + ["--resume"], cwd=tmp_path / "b", env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from step-" in resumed.stderr
    assert not list(checkpoints.parent.rglob("*.lorakit-tmp"))
    first = (tmp_path / "a" / "runs" / "ds-x" / "loss.csv").read_text()
    second = (checkpoints.parent / "loss.csv").read_text()
    assert first == second
    a, _ = kohya_file(tmp_path / "a" / "runs" / "ds-x" / "ds.safetensors")
    b, _ = kohya_file(checkpoints.parent / "ds.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refusals_are_one_line(tiny_sd, tmp_path):
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"not really")
    folder = dataset(tmp_path / "ds", tiny_sd)
    (folder / "lorakit.toml").write_text(TRAIN.format(base=pickle, epochs=1, extra=""), encoding="utf-8")
    result = run_train([str(folder)], tmp_path)
    assert result.exit_code == 2 and "a pickle checkpoint can run arbitrary code" in result.stderr
    # Issue 23 #15: a diffusers folder whose unet holds only a pickled .bin was an UnpicklingError
    import shutil

    pickled = tmp_path / "pickled_model"
    shutil.copytree(tiny_sd, pickled)
    for weights in (pickled / "unet").glob("*.safetensors"):
        weights.unlink()
    (pickled / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    (folder / "lorakit.toml").write_text(TRAIN.format(base=pickled, epochs=1, extra=""), encoding="utf-8")
    result = run_train([str(folder)], tmp_path)
    assert result.exit_code == 2 and "diffusion_pytorch_model.bin: a pickle checkpoint" in result.stderr
    (folder / "lorakit.toml").write_text(TRAIN.format(base=tiny_sd, epochs=1, extra='mixed-precision = "fp16"'),
                                         encoding="utf-8")
    result = run_train([str(folder), "--device", "cpu", "--tag", "fp16"], tmp_path)
    assert result.exit_code == 2 and 'mixed-precision = "fp16" needs a CUDA GPU' in result.stderr


def test_allow_lint_errors_trains_and_records_it(tiny_sd, tmp_path):
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1, captions=["neon city, rain", "cybrpnk, rain", "cybrpnk, fog"])
    result = run_train([str(folder), "--allow-lint-errors", "--tag", "exp"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "training despite 1 lint error(s)" in result.stderr
    _, metadata = kohya_file(tmp_path / "runs" / "ds-exp" / "ds.safetensors")
    assert metadata["lorakit.allow_lint_errors"] == "True"
    assert json.loads(metadata["lorakit.lint_summary"])["error"] == 1


def test_a_latin1_byte_in_a_caption_trains_with_allow_lint_errors(tiny_sd, tmp_path):
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1,
                     captions=["cybrpnk, cafe at night, rain", "cybrpnk, rain, fog", "cybrpnk, fog, dusk"])
    metadata = folder / "metadata.csv"
    metadata.write_bytes(metadata.read_bytes().replace(b"cafe", b"caf\xe9"))
    result = run_train([str(folder), "--allow-lint-errors", "--tag", "l1"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "LK004" in (tmp_path / "runs" / "ds-l1" / "lint-report.txt").read_text(encoding="utf-8")


def test_v_prediction_base_model_trains(tmp_path):
    from lora_core.testing.tiny_models import tiny_sd

    base = tiny_sd(tmp_path / "sd2", prediction_type="v_prediction")
    folder = dataset(tmp_path / "ds", base, epochs=1, extra="min-snr-gamma = 5.0\nnoise-offset = 0.05\n")
    result = run_train([str(folder), "--tag", "v"], tmp_path)
    assert result.exit_code == 0, result.output
    _, metadata = kohya_file(tmp_path / "runs" / "ds-v" / "ds.safetensors")
    assert metadata["ss_v_parameterization"] == "True"


def test_prediction_type_overrides_the_scheduler_config(tmp_path, tiny_sd):
    """An SD 2.x 512-base single file reads against lorakit's SD 2.1 (v-prediction) configs; the
    user says otherwise with prediction-type, and the noise scheduler follows."""
    from lorakit_lora.models import load_base_model

    assert load_base_model(str(tiny_sd)).prediction_type == "epsilon"
    model = load_base_model(str(tiny_sd), prediction_type="v_prediction")
    assert model.prediction_type == model.noise_scheduler.config.prediction_type == "v_prediction"
    assert load_base_model(str(tiny_sd), prediction_type="auto").noise_scheduler.config.prediction_type == "epsilon"


def test_settings_defaults_are_the_documented_ones():
    """TrainSettings (used by the trainer, the CUDA tests and the benchmark) and the [train] keys
    users read about in docs/configuration.md must agree on every default."""
    from lorakit_lora.settings import TrainSettings

    from lora_core.plugins import load_plugins

    section = load_plugins(builtin_only=True).config_sections["train"]
    documented = {key.name.replace("-", "_"): key.default for key in section.keys}
    defaults = vars(TrainSettings())
    shared = set(documented) & set(defaults)
    assert shared >= {"epochs", "learning_rate", "rank", "alpha", "prediction_type", "resolution", "seed"}
    assert {k: defaults[k] for k in shared} == {k: documented[k] for k in shared}


def test_two_process_accelerate_training(tiny_sd, tmp_path):
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1, count=8)
    # torchrun is the launcher accelerate uses; `accelerate launch --cpu` starts one process without MPI
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "lora_core.cli", "train", str(folder)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "with 2 process(es)" in run.stderr and run.stderr.count("trained 2 steps") == 1
    (run_dir,) = (tmp_path / "runs").glob("ds-*")  # both processes wrote into one run folder
    assert (run_dir / "ds.safetensors").is_file()


def test_prompt_parsing_follows_a1111():
    from lorakit_lora.generate import parse_prompt

    parsed = parse_prompt("cybrpnk, neon alley <lora:cyber-punk:0.7>, rain <LORA:detail> ")
    assert parsed.text == "cybrpnk, neon alley , rain"
    assert [(u.name, u.weight, u.adapter) for u in parsed.loras] == [("cyber-punk", 0.7, "cyber_punk"),
                                                                     ("detail", 1.0, "detail")]
    with pytest.raises(Exception, match="the weight must be a number"):
        parse_prompt("<lora:x:strong>")


def test_generate_applies_the_lora_at_the_prompt_weight(trained, tiny_sd, tmp_path):
    import numpy as np
    from PIL import Image

    def render(prompt: str, folder: str) -> np.ndarray:
        result = CliRunner().invoke(cli, ["generate", prompt, "--base-model", str(tiny_sd), "--lora-dir",
                                          str(trained), "-o", str(tmp_path / folder), "--steps", "2", "--device",
                                          "cpu", "--seed", "5"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (path,) = [Path(line) for line in result.stdout.splitlines()]
        with Image.open(path) as image:
            assert "<lora:" in image.text.get("parameters", "") or folder == "none"
            return np.asarray(image, dtype=np.float32)

    none = render("cybrpnk, neon", "none")
    full = render("cybrpnk, neon <lora:ds:1>", "full")
    off = render("cybrpnk, neon <lora:ds:0>", "off")
    assert np.abs(full - none).max() > 0  # the LoRA changes the image
    assert np.abs(off - none).max() <= 1  # weight 0: the base model's image (rounding aside)
    result = CliRunner().invoke(cli, ["generate", "x <lora:missing>", "--base-model", str(tiny_sd), "--lora-dir",
                                      str(trained), "-o", str(tmp_path / "m"), "--device", "cpu"])
    assert result.exit_code == 2 and "<lora:missing>: no missing.safetensors in" in result.stderr


def test_generate_refuses_hostile_lora_files_in_one_line(tiny_sd, tmp_path):
    """Garbage, truncated, foreign and pickle LoRA files: exit 2, one line naming the file."""
    from safetensors.torch import save_file

    loras = tmp_path / "loras"
    loras.mkdir()
    (loras / "garbage.safetensors").write_bytes(b"\x00\x01garbage" * 20)
    (loras / "truncated.safetensors").write_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00{")
    save_file({"not.a.lora.key": torch.zeros(2, 2)}, str(loras / "foreign.safetensors"))
    (loras / "pickled.pt").write_bytes(b"\x80\x04K\x01.")
    for name in ("garbage", "truncated", "foreign", "pickled.pt"):
        result = CliRunner().invoke(cli, ["generate", f"x <lora:{name}>", "--base-model", str(tiny_sd), "--lora-dir",
                                          str(loras), "-o", str(tmp_path / "out"), "--steps", "1", "--device", "cpu"])
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output, (name, result.output)
        assert name.split(".")[0] in result.stderr, (name, result.stderr)
    assert not list((tmp_path / "out").glob("*.png")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize("architecture, unet_params, text_params", [
    ("sd15", 859_520_964, (123_060_480,)), ("sd21", 865_910_724, (340_387_840,)),
    ("sdxl", 2_567_463_684, (123_060_480, 694_659_840))])
def test_single_file_architectures_are_the_published_models(tmp_path, architecture, unet_params, text_params):
    """The config folders lorakit writes for single-file checkpoints build the real architectures
    (counted on the meta device: no weights; the published parameter counts) and the real
    tokenizers, with no network."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from lorakit_lora.architectures import write_config_folder
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = write_config_folder(tmp_path / architecture, architecture)
    encoders = [("text_encoder", "tokenizer", CLIPTextModel), ("text_encoder_2", "tokenizer_2",
                                                               CLIPTextModelWithProjection)][: len(text_params)]
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
        texts = [model(CLIPTextConfig.from_pretrained(folder / name)) for name, _, model in encoders]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(unet), count(vae), tuple(map(count, texts))) == (unet_params, 83_653_863, text_params)
    pads = {"sd15": [49407], "sd21": [0], "sdxl": [49407, 0]}[architecture]  # OpenCLIP pads with "!" (id 0)
    for (_, tokenizer_name, _), pad in zip(encoders, pads):
        tokenizer = CLIPTokenizer.from_pretrained(folder / tokenizer_name)
        ids = tokenizer("a photo of a cat", padding="max_length", max_length=8).input_ids
        assert ids == [49406, 320, 1125, 539, 320, 2368, 49407, pad]


def test_a_single_file_that_is_not_stable_diffusion_is_refused(tmp_path, tiny_sd):
    from safetensors.torch import save_file

    odd = tmp_path / "odd.safetensors"
    save_file({"some.weight": torch.zeros(2)}, str(odd))
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1)
    (folder / "lorakit.toml").write_text(TRAIN.format(base=odd, epochs=1, extra=""), encoding="utf-8")
    result = run_train([str(folder)], tmp_path)
    assert result.exit_code == 2 and "not a Stable Diffusion 1.x/2.x or SDXL checkpoint lorakit knows" in result.stderr


def merged(module, tensors: dict, prefix: str):
    """`module` with each `prefix` LoRA of a kohya file folded in by hand (text encoders: the path
    may or may not carry `text_model.`, as transformers 4 and 5 differ)."""
    names = {}
    for name, child in module.named_modules():
        names[name.replace(".", "_")] = child
        names["text_model_" + name.replace(".", "_")] = child
    for key, down in tensors.items():
        if key.startswith(prefix + "_") and key.endswith(".lora_down.weight"):
            stem = key[: -len(".lora_down.weight")]
            up, alpha = tensors[stem + ".lora_up.weight"], float(tensors[stem + ".alpha"])
            with torch.no_grad():
                names[stem[len(prefix) + 1:]].weight += (alpha / down.shape[0]) * (up.float() @ down.float())
    return module


def merged_from_diffusers(unet, path):
    """`unet` with the U-Net LoRA of a diffusers-format file folded in by hand (alpha from its
    adapter metadata): the ground truth for a kohya SDXL file, whose U-Net names are SAI's."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 (not a dict)
        alpha = float(json.loads(handle.metadata()["lora_adapter_metadata"])["unet.lora_alpha"])
    modules = dict(unet.named_modules())
    for key, down in tensors.items():
        if key.startswith("unet.") and key.endswith(".lora.down.weight"):
            stem = key[len("unet."): -len(".lora.down.weight")]
            up = tensors[f"unet.{stem}.lora.up.weight"]
            with torch.no_grad():
                modules[stem].weight += (alpha / down.shape[0]) * (up.float() @ down.float())
    return unet


def test_sdxl_trains_both_text_encoders_and_reloads_exactly(tmp_path):
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModelWithProjection

    from lora_core.testing.tiny_models import tiny_sdxl

    base = tiny_sdxl(tmp_path / "xl")
    folder = dataset(tmp_path / "ds", base, epochs=1, extra="train-text-encoder = true\n")
    result = run_train([str(folder), "--tag", "xl"], tmp_path)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "ds-xl"
    tensors, metadata = kohya_file(run / "ds.safetensors")
    assert {k.split("_")[1] for k in tensors} == {"unet", "te1", "te2"}
    assert metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    assert metadata["modelspec.architecture"] == "stable-diffusion-xl-v1-base/lora"

    generator = torch.Generator().manual_seed(0)
    sample, hidden = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 77, 64, generator=generator)
    extra = {"text_embeds": torch.randn(1, 32, generator=generator),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    ids = torch.tensor([[49406, 320, 1125, 49407] + [49407] * 73])

    def outputs(unet, text_encoder_2):
        with torch.no_grad():
            return (unet(sample, torch.tensor([500]), hidden, added_cond_kwargs=extra).sample,
                    text_encoder_2(ids).text_embeds)

    assert not any(k.startswith("lora_unet_down_blocks") for k in tensors)  # SAI names, as kohya writes SDXL
    expected = outputs(merged_from_diffusers(UNet2DConditionModel.from_pretrained(base, subfolder="unet"),
                                             run / "pytorch_lora_weights.safetensors"),
                       merged(CLIPTextModelWithProjection.from_pretrained(base, subfolder="text_encoder_2"), tensors,
                              "lora_te2"))
    for file in ("pytorch_lora_weights.safetensors", "ds.safetensors"):
        pipeline = StableDiffusionXLPipeline.from_pretrained(base)
        before = outputs(pipeline.unet, pipeline.text_encoder_2)
        pipeline.load_lora_weights(str(run / file))
        after = outputs(pipeline.unet, pipeline.text_encoder_2)
        for got, want, was in zip(after, expected, before):
            assert (got - was).abs().max() > 1e-6, file
            assert torch.allclose(got, want, atol=1e-5), (file, (got - want).abs().max())


def test_generate_renders_with_an_sdxl_lora(tmp_path):
    from lora_core.testing.tiny_models import tiny_sdxl

    base = tiny_sdxl(tmp_path / "xl")
    folder = dataset(tmp_path / "ds", base, epochs=1)
    assert run_train([str(folder), "--tag", "g"], tmp_path).exit_code == 0
    result = CliRunner().invoke(cli, ["generate", "cybrpnk <lora:ds:0.8>", "--base-model", str(base), "--lora-dir",
                                      str(tmp_path / "runs"), "-o", str(tmp_path / "out"), "--steps", "2",
                                      "--device", "cpu"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).read_bytes().startswith(b"\x89PNG")


def test_a_run_that_fails_to_start_leaves_no_folder(tiny_sd, tmp_path):
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1)
    (folder / "lorakit.toml").write_text(TRAIN.format(base=tmp_path / "missing-model", epochs=1, extra=""),
                                         encoding="utf-8")
    result = run_train([str(folder), "--tag", "t"], tmp_path)
    assert result.exit_code == 2 and "lorakit: error:" in result.stderr and "missing-model" in result.stderr
    assert not (tmp_path / "runs" / "ds-t").exists()
    (folder / "lorakit.toml").write_text(TRAIN.format(base=tiny_sd, epochs=1, extra=""), encoding="utf-8")
    assert run_train([str(folder), "--tag", "t"], tmp_path).exit_code == 0  # the same tag works now


def test_a_single_file_checkpoint_loads_offline_exactly_and_trains(tmp_path, monkeypatch):
    from diffusers import StableDiffusionPipeline
    from lorakit_lora.models import load_base_model

    from lora_core.testing.tiny_models import save_ldm_checkpoint, tiny_sd_topology

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_sd_topology(tmp_path / "sd1")
    checkpoint = save_ldm_checkpoint(folder, tmp_path / "model.safetensors")
    reference = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    loaded = load_base_model(str(checkpoint), config_folder=str(folder))
    generator = torch.Generator().manual_seed(0)
    sample, hidden = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 77, 32, generator=generator)
    pixels, ids = torch.randn(1, 3, 64, 64, generator=generator), torch.tensor([[49406, 320, 1125, 49407]])
    with torch.no_grad():
        pairs = [(m.unet(sample, torch.tensor([10]), hidden).sample, m.vae.decode(sample).sample,
                  m.vae.encode(pixels).latent_dist.mean, m.text_encoder(ids)[0]) for m in (reference, loaded)]
    # Every weight came from the file: the state dicts are identical, exactly...
    for part in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(loaded, part).state_dict(), getattr(reference, part).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), part
    # ...and the outputs agree within float tolerance (two loads may pick other kernels on another CPU)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(*pairs))
    assert loaded.version == "sd_v1"
    data = dataset(tmp_path / "ds", checkpoint, epochs=1, extra=f'base-model-config = "{folder}"\n')
    result = run_train([str(data), "--tag", "file"], tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "ds-file" / "ds.safetensors").is_file()


def test_a_trusted_pickle_checkpoint_loads_with_the_weights_only_loader(tmp_path, monkeypatch):
    """A Lightning-era .ckpt ({"state_dict": ...}) loads once --allow-pickle is given (read by
    torch's weights-only unpickler, its keys picking the architecture), and never without it."""
    from lorakit_lora.models import load_base_model
    from safetensors.torch import load_file

    from lora_core.testing.tiny_models import save_ldm_checkpoint, tiny_sd_topology

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tiny_sd_topology(tmp_path / "sd1")
    tensors = load_file(save_ldm_checkpoint(folder, tmp_path / "model.safetensors"))
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": tensors, "global_step": 470000}, ckpt)
    with pytest.raises(PluginError, match="pickle checkpoint can run arbitrary code"):
        load_base_model(str(ckpt), config_folder=str(folder))
    from_pickle = load_base_model(str(ckpt), allow_pickle=True, config_folder=str(folder))
    from_file = load_base_model(str(tmp_path / "model.safetensors"), config_folder=str(folder))
    for a, b in zip(from_pickle.modules, from_file.modules):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(PluginError, match="could not be loaded as a Stable Diffusion 1.x/2.x checkpoint"):
        load_base_model(str(ckpt), allow_pickle=True)  # detected as SD 1.x from the pickle's keys
    assert [p.name for p in (tmp_path / "cache" / "lorakit" / "architectures").iterdir()][0].startswith("sd15-")
    result = CliRunner().invoke(cli, ["generate", "x", "--base-model", str(ckpt), "--device", "cpu"])
    assert result.exit_code == 2 and "--allow-pickle" in result.stderr


def test_an_sdxl_single_file_loads_offline_exactly_and_trains(tmp_path, monkeypatch):
    """SDXL's original layout: CLIP ViT-L under conditioner.embedders.0, OpenCLIP bigG (fused
    q/k/v, projection matrix) under conditioner.embedders.1, text-time embedding as label_emb."""
    from diffusers import StableDiffusionXLPipeline
    from lorakit_lora.models import load_base_model

    from lora_core.testing.tiny_models import save_ldm_checkpoint, tiny_sdxl_topology

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_sdxl_topology(tmp_path / "xl")
    checkpoint = save_ldm_checkpoint(folder, tmp_path / "xl.safetensors")
    reference = StableDiffusionXLPipeline.from_pretrained(folder)
    loaded = load_base_model(str(checkpoint), config_folder=str(folder))
    generator = torch.Generator().manual_seed(0)
    sample, hidden = torch.randn(1, 4, 8, 8, generator=generator), torch.randn(1, 77, 96, generator=generator)
    extra = {"text_embeds": torch.randn(1, 64, generator=generator),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    pixels, ids = torch.randn(1, 3, 64, 64, generator=generator), torch.tensor([[49406, 320, 1125, 49407]])
    with torch.no_grad():
        pairs = [(m.unet(sample, torch.tensor([10]), hidden, added_cond_kwargs=extra).sample,
                  m.vae.decode(sample).sample, m.vae.encode(pixels).latent_dist.mean, m.text_encoder(ids)[0],
                  m.text_encoder_2(ids, output_hidden_states=True).hidden_states[-2],
                  m.text_encoder_2(ids).text_embeds) for m in (reference, loaded)]
    assert all(torch.equal(a, b) for a, b in zip(*pairs))  # every weight came from the file
    assert loaded.version == "sdxl" and loaded.tokenizer_2 is not None
    data = dataset(tmp_path / "ds", checkpoint, epochs=1,
                   extra=f'base-model-config = "{folder}"\ntrain-text-encoder = true\n')
    result = run_train([str(data), "--tag", "file"], tmp_path)
    assert result.exit_code == 0, result.output
    tensors, metadata = kohya_file(tmp_path / "runs" / "ds-file" / "ds.safetensors")
    assert {k.split("_")[1] for k in tensors} == {"unet", "te1", "te2"}
    assert metadata["ss_base_model_version"] == "sdxl_base_v1-0"
    result = CliRunner().invoke(cli, ["generate", "cybrpnk <lora:ds:0.8>", "--base-model", str(checkpoint),
                                      "--base-model-config", str(folder), "--lora-dir", str(tmp_path / "runs"),
                                      "-o", str(tmp_path / "out"), "--steps", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output  # generate reads the same file through the same loader
    assert Path(result.stdout.strip()).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("builder, architecture, kind", [("tiny_sd_topology", "sd15", "a Stable Diffusion 1.x/2.x"),
                                                         ("tiny_sdxl_topology", "sdxl", "an SDXL")])
def test_a_single_file_of_an_unexpected_architecture_is_one_line(tmp_path, monkeypatch, builder, architecture, kind):
    """Without base-model-config lorakit detects the family and uses its own published configs,
    which a tiny model does not match: one line, no traceback, and the config folder is complete."""
    from lora_core.testing import tiny_models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    build = getattr(tiny_models, builder)
    checkpoint = tiny_models.save_ldm_checkpoint(build(tmp_path / "model"), tmp_path / "model.safetensors")
    data = dataset(tmp_path / "ds", checkpoint, epochs=1)
    result = run_train([str(data), "--tag", "x"], tmp_path)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"could not be loaded as {kind} checkpoint against" in result.stderr
    from lorakit_lora.architectures import spec_digest

    cached = tmp_path / "cache" / "lorakit" / "architectures"
    assert [p.name for p in cached.iterdir()] == [f"{architecture}-{spec_digest(architecture)}"]  # no staging left
    assert (next(cached.iterdir()) / "model_index.json").is_file()


def test_eight_bit_adamw(tiny_sd, tmp_path):
    pytest.importorskip("bitsandbytes")
    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1, extra='optimizer = "adamw8bit"\nsave-every-epochs = 1\n')
    result = run_train([str(folder), "--tag", "b"], tmp_path)
    assert result.exit_code == 0, result.output
    (checkpoint,) = (tmp_path / "runs" / "ds-b" / "checkpoints").glob("step-*.pt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["optimizer"]["state"]
    assert state and all("__bnb_optimizer_quant_state__" in s for s in state.values())  # bitsandbytes


def test_a_hub_id_in_the_local_cache_trains_offline(tiny_sd, tmp_path):
    """The real hub path: a model id resolved by huggingface_hub from its cache (the layout a
    download leaves), with the hub switched off."""
    import shutil

    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--lorakit--tiny-sd"
    revision = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_sd, repo / "snapshots" / revision)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    folder = dataset(tmp_path / "ds", "lorakit/tiny-sd", epochs=1)
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "train", str(folder), "--tag", "hub"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    missing = dataset(tmp_path / "ds2", "lorakit/not-downloaded", epochs=1)
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "train", str(missing), "--tag", "hub"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "'lorakit/not-downloaded' is not in the local Hugging Face cache" in run.stderr


def test_base_model_on_the_command_line_and_its_absence_said_at_once(tiny_sd, tmp_path):
    """Issue 24 #8: `--base-model` exists (as on `generate`); without one, the error names the file
    to edit before any model code is imported, and leaves no empty `runs/` behind."""
    import subprocess
    import sys

    folder = dataset(tmp_path / "ds", tiny_sd, epochs=1)
    config = folder / "lorakit.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(f'base-model = "{tiny_sd}"', ""), encoding="utf-8")
    probe = ("import sys, runpy; sys.argv = ['lorakit', 'train', sys.argv[1]]\n"
             "try:\n    runpy.run_module('lora_core', run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    print('heavy:', sorted(m for m in ('torch', 'diffusers') if m in sys.modules), 'exit:', e.code)\n")
    shown = subprocess.run([sys.executable, "-c", probe, str(folder)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert "[train] base-model is not set: pass --base-model" in shown.stderr
    assert f"under [train] in {config}" in shown.stderr
    assert "heavy: [] exit: 2" in shown.stdout, shown.stdout + shown.stderr
    assert not (tmp_path / "runs").exists()
    relative = os.path.relpath(tiny_sd, tmp_path)
    result = run_train([str(folder), "--base-model", relative, "--tag", "cli"], tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "runs" / "ds-cli" / "config.json").read_text())["sections"]["train"][
        "base-model"] == str(Path(tiny_sd).resolve())


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_are_finite_on_a_zero_terminal_snr_schedule(prediction_type):
    from diffusers import DDPMScheduler
    from lorakit_lora.loop import min_snr_weights

    rescaled = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                             rescale_betas_zero_snr=True)
    assert float(rescaled.alphas_cumprod[-1]) == 0.0  # SNR 0 at the last step
    steps = torch.tensor([0, 500, 999])
    weights = min_snr_weights(rescaled.alphas_cumprod, steps, 5.0, prediction_type)
    assert torch.isfinite(weights).all()
    alphas = rescaled.alphas_cumprod[500].double()
    snr = alphas / (1 - alphas)
    if prediction_type == "epsilon":
        assert weights[0].item() == pytest.approx(5.0 / (rescaled.alphas_cumprod[0].item()
                                                          / (1 - rescaled.alphas_cumprod[0].item())), rel=1e-4)
        assert weights[1].item() == pytest.approx(1.0 if snr < 5 else 5.0 / snr.item(), rel=1e-4)
        assert weights[2].item() == 1.0  # the limit of min(snr, 5) / snr as snr -> 0
    else:
        assert weights[1].item() == pytest.approx(min(snr.item(), 5.0) / (snr.item() + 1), rel=1e-4)
        assert weights[2].item() == 0.0

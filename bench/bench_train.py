"""Benchmark: one lorakit training step against a minimal hand-written diffusers + peft loop doing
the same work on the same model, side by side in one process (ratio), plus GPU configurations.

    python bench/bench_train.py                        # tiny SD-1.x model on the CPU (tiny-xl: SDXL-shaped)
    python bench/bench_train.py --size sd15 --device cuda --attention xformers,sdpa --precision fp16,bf16 \\
        --checkpointing off,on --resolution 512        # SD-1.5-sized random weights on a GPU
    python bench/bench_train.py --size sdxl --device cuda --attention xformers,sdpa --precision fp16,bf16 \\
        --checkpointing on --resolution 1024 --batch-size 1   # SDXL-sized (2.6 B UNet parameters)

The same work: latents and text embeddings are computed once (lorakit: its latent and text caches;
the hand loop: a list made before timing), then each step draws noise and timesteps, runs the UNet
with LoRA on q/k/v/out, MSE loss, backward, gradient clipping and AdamW. The two are interleaved
in rounds so machine noise hits both alike; the figure is the median steps/s of each and their
ratio (lorakit / hand loop; 1.0 means no overhead).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
import types
from pathlib import Path


def make_dataset(folder: Path, count: int, size: int) -> Path:
    import numpy as np
    from PIL import Image

    from lora_core.testing import make_csv_dataset

    rows = [(f"{i:03d}.png", f"cybrpnk, neon city street, rain, light {i % 7}") for i in range(count)]
    make_csv_dataset(folder, rows, images=False)
    rng = np.random.default_rng(0)
    for name, _ in rows:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
    return folder


def base_model(size: str, workdir: Path) -> Path:
    folder = workdir / f"base-{size}"
    if (folder / "model_index.json").is_file():
        return folder
    if size in ("tiny", "tiny-xl"):
        from lora_core.testing.tiny_models import tiny_sd, tiny_sdxl

        return (tiny_sd if size == "tiny" else tiny_sdxl)(folder)
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from lorakit_lora.architectures import write_config_folder
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    write_config_folder(folder, size)  # random weights in the published architecture
    torch.manual_seed(0)
    UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")).save_pretrained(folder / "unet")
    AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")).save_pretrained(folder / "vae")
    CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder")).save_pretrained(folder / "text_encoder")
    if (folder / "text_encoder_2").is_dir():
        CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder / "text_encoder_2")).save_pretrained(
            folder / "text_encoder_2")
    return folder


def lorakit_trainer(base: Path, data: Path, args: argparse.Namespace, attention: str, precision: str,
                    checkpointing: bool, workdir: Path):
    from lorakit_lora.data import examples_from
    from lorakit_lora.loop import Trainer
    from lorakit_lora.settings import TrainSettings

    from lora_core.api import LintOptions, dataset_settings, load_config
    from lora_core.datasets import open_dataset
    from lora_core.plugins import load_plugins

    registry = load_plugins()
    config = load_config(data, LintOptions(isolated=True), registry)
    dataset = open_dataset(data / "metadata.csv", dataset_settings(config, LintOptions()), registry.readers)
    settings = TrainSettings(base_model=str(base), rank=args.rank, alpha=args.rank, resolution=args.resolution,
                             batch_size=args.batch_size, attention=attention, mixed_precision=precision,
                             gradient_checkpointing=checkpointing, save_every_epochs=0, seed=0)
    job = types.SimpleNamespace(device=args.device, allow_pickle=False, run_dir=workdir / "run", resume=False,
                                cache_dir=workdir / "cache")
    trainer = Trainer(job, settings, examples_from(dataset), [], lambda message: None)
    trainer.setup()
    batches = trainer._my_batches(0)
    for batch in batches:  # fill the caches (both sides precompute before timing)
        trainer.encode_latents(batch)
    cycle = itertools.cycle(batches)
    return trainer, lambda: trainer.train_step(next(cycle))


def hand_loop(base: Path, trainer, args: argparse.Namespace):
    """The minimal loop of the diffusers examples, on the same inputs lorakit would use."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig

    device, dtype = trainer.device, trainer.weight_dtype
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet").to(device)
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    if dtype != torch.float32:
        unet.to(dtype=dtype)
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    if trainer.settings.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    if "xformers" in trainer.attention:
        unet.enable_xformers_memory_efficient_attention()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
    inputs = []
    for batch in trainer._my_batches(0):
        hidden, pooled = trainer.encode_text([sample.caption for sample in batch])
        extra = {}
        if pooled is not None:  # SDXL: the pooled text embedding and the size/crop ids
            extra["added_cond_kwargs"] = {"text_embeds": pooled.detach().to(dtype),
                                          "time_ids": trainer._time_ids(batch).to(device, dtype)}
        inputs.append((trainer.encode_latents(batch), hidden.detach(), extra))
    cycle = itertools.cycle(inputs)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    def step() -> float:
        latents, hidden, extra = next(cycle)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (latents.shape[0],), device=latents.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            prediction = unet(noisy, timesteps, hidden.to(dtype), **extra).sample
        loss = F.mse_loss(prediction.float(), noise.float())
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def timed(step, count: int, cuda: bool) -> float:
    import torch

    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(count):
        step()
    if cuda:
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=["tiny", "tiny-xl", "sd15", "sd21", "sdxl"], default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--attention", default="sdpa")
    parser.add_argument("--precision", default="no")
    parser.add_argument("--checkpointing", default="off")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default="build/bench-train")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base = base_model(args.size, workdir)
    data = make_dataset(workdir / f"data-{args.resolution}", args.images, args.resolution)
    for attention, precision, checkpointing in itertools.product(args.attention.split(","), args.precision.split(","),
                                                                 args.checkpointing.split(",")):
        with tempfile.TemporaryDirectory(dir=workdir) as scratch:
            trainer, lorakit_step = lorakit_trainer(base, data, args, attention, precision, checkpointing == "on",
                                                    Path(scratch))
            hand_step = hand_loop(base, trainer, args)
            cuda = trainer.device.type == "cuda"
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            ours, theirs = [], []
            for _ in range(args.rounds + 1):  # the first round warms up and is dropped
                ours.append(timed(lorakit_step, args.steps, cuda))
                theirs.append(timed(hand_step, args.steps, cuda))
            a, b = statistics.median(ours[1:]), statistics.median(theirs[1:])
            peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB (both)" if cuda else ""
            device = torch.cuda.get_device_name() if cuda else "cpu"
            print(f"{args.size} {args.resolution}px bs{args.batch_size} {trainer.attention} {trainer.mixed_precision} "
                  f"checkpointing {checkpointing}: lorakit {a:.2f} steps/s, hand loop {b:.2f} steps/s, "
                  f"ratio {a / b:.3f} ({device}{peak})", flush=True)


if __name__ == "__main__":
    main()

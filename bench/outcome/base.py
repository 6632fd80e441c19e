"""Build the experiment's base model once: a tiny Stable Diffusion 1.x-shaped pipeline (AutoencoderKL,
CLIP text encoder with the real CLIP tokenizer, UNet2DConditionModel, DDPM scheduler; SD 2.x's
v-prediction on a zero-terminal-SNR schedule, see `build`) trained from scratch on the synthetic
world's three base styles, saved as a diffusers folder that `lorakit train` loads like any SD
1.x/2.x folder.

    python bench/outcome/base.py --out build/outcome/base [--size small]

The VAE learns to compress every style (like SD's VAE, it is a generic image codec: 4x
downsampling, 16x16x4 latents). The text encoder (the real CLIP tokenizer, a tiny transformer) and
the UNet learn captions of the base styles only ("striped style, a red circle on a white
background", 15% without the style, 10% empty for classifier-free guidance). The held-out
`outline` style is never captioned or drawn by the base. Latents are computed once. `--reuse
FOLDER` takes the VAE and judge of an earlier build (they do not depend on the UNet); `--measure`
measures an existing build's quality again (after SAMPLE_STEPS or GUIDANCE change).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import BASE_STYLES, STYLES, Scene, render, scenes

#: Training budget per size: (VAE steps, UNet steps, batch). `small` is the documented base;
#: `tiny` is the test suite's (it checks the plumbing, not the quality).
SIZES = {"tiny": (30, 40, 16), "small": (1400, 5000, 32)}
JUDGE_STEPS = {"tiny": 20, "small": 1200}
QUALITY_FLOOR = 0.8  # the judge must read the base's shapes, colours, backgrounds and styles this often
#: How the experiment samples (the base's quality and every LoRA): DDIM, trailing spacing. Chosen on
#: the base's own quality alone (judge on 144 prompts of its styles, before any LoRA was trained):
#: 12 steps read as well as 20; guidance 2.0 read best (shape/colour/background/style 0.97/0.97/1.00/0.97,
#: against 0.97/0.93/1.00/0.94 at 3.0 and 0.96/0.88/1.00/0.87 at 5.0).
SAMPLE_STEPS = 12
GUIDANCE = 2.0


def base_quality(pipeline, judge_model, size: str, log) -> dict[str, float]:
    """How often the base draws what a prompt of its own styles asks (judge's reading), per attribute."""
    import torch
    from diffusers import DDIMScheduler
    from judge import predict
    from world import all_subjects

    sampler = DDIMScheduler.from_config(pipeline.scheduler.config)
    kept, pipeline.scheduler = pipeline.scheduler, sampler
    pipeline.set_progress_bar_config(disable=True)
    subjects = all_subjects() if size != "tiny" else all_subjects()[:2]
    asked = [Scene(*subject, style) for style in BASE_STYLES for subject in subjects]
    found = []
    for start in range(0, len(asked), 48):
        chunk = asked[start:start + 48]
        generators = [torch.Generator().manual_seed(10_000 + start + k) for k in range(len(chunk))]
        steps = SAMPLE_STEPS if size != "tiny" else 2
        images = pipeline([f"{s.style} style, {s.describe()}" for s in chunk], num_inference_steps=steps,
                          guidance_scale=GUIDANCE, height=64, width=64, generator=generators, output_type="pt").images
        found.append(predict(judge_model, images * 2 - 1))
    read = np.concatenate(found)
    truth = np.array([s.labels for s in asked])
    quality = {name: float((read[:, k] == truth[:, k]).mean())
               for k, name in enumerate(("shape", "colour", "background", "style"))}
    pipeline.scheduler = kept
    log("base model quality (judge on its samples): " + ", ".join(f"{k} {v:.2f}" for k, v in quality.items()))
    if size != "tiny" and min(quality.values()) < QUALITY_FLOOR:
        log(f"warning: below {QUALITY_FLOOR} on some attribute: train longer (--size, SIZES)")
    return quality


def caption_for(scene: Scene, rng: np.random.Generator) -> str:
    draw = rng.random()
    if draw < 0.10:
        return ""
    if draw < 0.25:
        return scene.describe()
    return f"{scene.style} style, {scene.describe()}"


def images_tensor(batch: list[Scene]):
    import torch

    array = np.stack([render(s) for s in batch]).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def build_parts(folder: Path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from lora_core.toolkit.clip_tokens import write_tokenizer_folder

    vocabulary = write_tokenizer_folder(folder / "_vocab")
    tokenizer = CLIPTokenizer.from_pretrained(vocabulary, model_max_length=77)
    text_config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                                 projection_dim=64, bos_token_id=tokenizer.bos_token_id,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vae = AutoencoderKL(latent_channels=4, sample_size=64, block_out_channels=(16, 32, 64), layers_per_block=1,
                        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                        norm_num_groups=16, mid_block_add_attention=False)
    # Cross-attention at 8x8 and 4x4 only: attention over 16x16 latents would triple a step's time.
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, cross_attention_dim=64,
                                layers_per_block=1, block_out_channels=(32, 64, 64), norm_num_groups=32,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                attention_head_dim=8)
    return vocabulary, tokenizer, CLIPTextModel(text_config), vae, unet


def train_vae(vae, steps: int, batch: int, rng: np.random.Generator, log) -> float:
    import torch

    pool = scenes(STYLES, 2, seed=11)
    optimiser = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    batch = min(batch, 16)  # a VAE step is a full-resolution pass: small batches, more of them
    for step in range(steps):
        chosen = [pool[i] for i in rng.integers(0, len(pool), batch)]
        x = images_tensor(chosen)
        posterior = vae.encode(x).latent_dist
        z = posterior.sample()
        out = vae.decode(z).sample
        loss = (out - x).abs().mean() + 1e-6 * posterior.kl().mean()
        for group in optimiser.param_groups:
            group["lr"] = 2e-3 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"vae step {step}/{steps} l1 {loss.item():.4f}")
    with torch.no_grad():
        x = images_tensor([pool[i] for i in rng.integers(0, len(pool), 128)])
        std = vae.encode(x).latent_dist.mode().std().item()
    return 1.0 / std


def train_unet(tokenizer, text_encoder, vae, unet, scheduler, steps: int, batch: int, rng: np.random.Generator,
               log, checkpoint=None) -> None:
    import torch

    pool = scenes(BASE_STYLES, 4, seed=12)
    scale = vae.config.scaling_factor
    vae.requires_grad_(False)
    with torch.no_grad():  # every picture's latent distribution and every caption's tokens, once
        moments = torch.cat([vae.encode(images_tensor(pool[i:i + 64])).latent_dist.parameters
                             for i in range(0, len(pool), 64)])
    wordings = sorted({""} | {s.describe() for s in pool} | {f"{s.style} style, {s.describe()}" for s in pool})
    ids = tokenizer(wordings, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    row = {w: k for k, w in enumerate(wordings)}
    # The text encoder learns with the UNet: a random frozen one blurs "red" and "blue" together
    # (a first base drew muddy colours on grey); SD's was pretrained, this world has no corpus.
    parameters = [*unet.parameters(), *text_encoder.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=6e-4, weight_decay=0.01)
    started = time.monotonic()
    for step in range(steps):
        chosen = rng.integers(0, len(pool), batch)
        mean, logvar = moments[chosen].chunk(2, dim=1)
        latents = (mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn_like(mean)) * scale
        hidden = text_encoder(ids[[row[caption_for(pool[i], rng)] for i in chosen]])[0]
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (batch,))
        noisy = scheduler.add_noise(latents, noise, t)
        target = scheduler.get_velocity(latents, noise, t)
        loss = torch.nn.functional.mse_loss(unet(noisy, t, hidden).sample, target)
        warm = min(1.0, (step + 1) / 200)
        for group in optimiser.param_groups:
            group["lr"] = 6e-4 * warm * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / steps)))
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        if step % 250 == 0 or step == steps - 1:
            elapsed = time.monotonic() - started
            log(f"unet step {step}/{steps} loss {loss.item():.4f} ({elapsed / (step + 1):.2f} s/step)")
        if checkpoint is not None and (step + 1) % 2000 == 0 and step + 1 < steps:
            checkpoint(step + 1)


def build(out: Path, size: str = "small", seed: int = 0, log=print, reuse: Path | None = None) -> Path:
    """Train and save the base model into `out` (a diffusers folder); returns it."""
    import shutil

    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vae_steps, unet_steps, batch = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    vocabulary, tokenizer, text_encoder, vae, unet = build_parts(out)
    import judge

    if reuse is not None:
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(reuse / "vae")
        if reuse.resolve() != out.resolve():
            shutil.copytree(reuse / "judge", out / "judge", dirs_exist_ok=True)
        vae_seconds = json.loads((reuse / "outcome-base.json").read_text()).get("vae_and_judge_seconds", 0.0)
    else:
        scaling = train_vae(vae, vae_steps, batch, rng, log)
        vae.register_to_config(scaling_factor=scaling)
        judge.build(out / "judge", vae=vae, steps=JUDGE_STEPS[size], log=log, minimum=0.9 if size != "tiny" else 0.0)
        vae_seconds = time.monotonic() - started
    judge_model = judge.load(out / "judge")
    # SD's scaled_linear betas rescaled to zero terminal SNR, with v-prediction (Lin et al. 2023; SD 2.x's
    # prediction type): on 16x16 latents SD's own last step keeps enough of the picture
    # (sqrt(alpha_bar_T) 0.07 against a mean noise of 1/16) that the first bases learned each
    # picture's colour and background from the noise, not the caption, and drew them at random from
    # pure noise (colour 0.65, background 0.64; given the right mean, 0.81 and 0.91). "trailing"
    # spacing starts sampling at the last training step.
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              rescale_betas_zero_snr=True, prediction_type="v_prediction",
                              timestep_spacing="trailing", steps_offset=1)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    progress: dict[int, dict[str, float]] = {}

    def checkpoint(step: int) -> None:
        progress[step] = base_quality(pipeline, judge_model, size, log)

    train_unet(tokenizer, text_encoder, vae, unet, scheduler, unet_steps, batch, rng, log, checkpoint)
    quality = base_quality(pipeline, judge_model, size, log)
    progress[unet_steps] = quality
    pipeline.save_pretrained(out)
    for name in ("vocab.json", "merges.txt"):  # transformers 5 saves tokenizer.json only
        shutil.copy(vocabulary / name, out / "tokenizer" / name)
    shutil.rmtree(vocabulary)
    seconds = time.monotonic() - started
    (out / "outcome-base.json").write_text(json.dumps({
        "size": size, "seed": seed, "vae_steps": vae_steps, "unet_steps": unet_steps, "batch": batch,
        "vae_and_judge_seconds": round(vae_seconds, 1), "seconds": round(seconds, 1),
        "torch_threads": torch.get_num_threads(), "reused_vae_and_judge_from": str(reuse) if reuse else None,
        "quality": quality, "quality_by_unet_step": progress,
        "sampling": {"steps": SAMPLE_STEPS, "guidance": GUIDANCE},
    }, indent=1) + "\n")
    log(f"base model written to {out} in {seconds / 60:.1f} min")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/outcome/base"))
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", type=Path, default=None, help="an earlier build's folder: its VAE and judge")
    parser.add_argument("--measure", action="store_true",
                        help="only measure the quality of the build in --out again (new SAMPLE_STEPS/GUIDANCE)")
    args = parser.parse_args(argv)
    if args.measure:
        measure(args.out, args.size)
    else:
        build(args.out, args.size, args.seed, reuse=args.reuse)
    return 0


def measure(out: Path, size: str = "small", log=print) -> dict[str, float]:
    """The quality of an existing build with the current sampling settings, recorded in its outcome-base.json."""
    import torch
    from diffusers import StableDiffusionPipeline
    from judge import load

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    pipeline = StableDiffusionPipeline.from_pretrained(out, safety_checker=None, requires_safety_checker=False)
    quality = base_quality(pipeline, load(out / "judge"), size, log)
    record = out / "outcome-base.json"
    info = json.loads(record.read_text())
    info.update(quality=quality, sampling={"steps": SAMPLE_STEPS, "guidance": GUIDANCE})
    record.write_text(json.dumps(info, indent=1) + "\n")
    return quality


if __name__ == "__main__":
    raise SystemExit(main())

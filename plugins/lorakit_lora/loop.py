"""The LoRA training loop: peft adapters on the UNet (and optionally the text encoder), accelerate
for devices, precision and several processes, resumable checkpoints, validation, early stopping,
sample grids and the loss monitor.

Determinism: the data order and augmentation come from `data.TrainingData` (functions of seed,
epoch and image); noise and timesteps from one torch generator per process whose state is saved
in every checkpoint with the LoRA weights, optimizer, scheduler and gradient scaler. A run killed
at any moment and resumed from its last checkpoint computes the same losses as one never stopped.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.errors import ConfigError, PluginError

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2


#: Seconds between two progress lines: a line a step would flood a log; one an epoch is silence.
PROGRESS_EVERY = 10.0


class Progress:
    """Step progress with the loss, learning rate, speed and time left, every PROGRESS_EVERY
    seconds (and at the first step, which says how long one step takes)."""

    def __init__(self, report: Any, total: int, done: int, caching: bool) -> None:
        self.report, self.total, self.first = report, total, done
        self.caching = caching
        self.started = self.last = time.monotonic()
        self.shown = False

    def step(self, step: int, loss: float, rate: float) -> None:
        now = time.monotonic()
        if self.shown and now - self.last < PROGRESS_EVERY and step < self.total:
            return
        self.last, self.shown = now, True
        per_step = (now - self.started) / max(1, step - self.first)
        left = max(0, self.total - step) * per_step
        note = " (the first epoch also encodes and caches the latents)" if self.caching else ""
        self.report(f"step {step}/{self.total} ({step / max(1, self.total):.0%}): loss {loss:.4f}, lr {rate:.3g}, "
                    f"{per_step:.2f} s/step, {_duration(left)} left{note}")
        self.caching = False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class History:
    """One row per epoch (loss.csv), plus per-step training losses."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    step_rates: list[float] = field(default_factory=list)  # the learning rate of each step


@dataclass
class Position:
    epoch: int = 0
    batch: int = 0  # batches of this epoch already trained (this process's share)
    step: int = 0  # optimizer steps
    best_validation: float = math.inf
    epochs_without_improvement: int = 0
    epoch_losses: list[float] = field(default_factory=list)


def precision(settings: Any, cuda: bool) -> str:
    wanted = settings.mixed_precision
    if wanted == "auto":
        if not cuda:
            return "no"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if wanted == "fp16" and not cuda:
        raise ConfigError("[train] mixed-precision = \"fp16\" needs a CUDA GPU: on a CPU accelerate silently trains "
                          "in fp32 instead; use \"no\" (or \"bf16\", which CPUs run)")
    return wanted


def choose_attention(unet: Any, wanted: str, cuda: bool) -> str:
    """Turn on xformers memory-efficient attention when asked for (or, with auto, when it is
    installed and works on this GPU: probed once); otherwise PyTorch SDPA, the diffusers default."""
    if wanted == "sdpa" or (wanted == "auto" and not cuda):
        return "sdpa"
    try:
        import xformers  # noqa: F401
    except ImportError:
        if wanted == "xformers":
            raise PluginError("[train] attention = \"xformers\" but xformers is not installed: "
                              "pip install 'lorakit[xformers]', or use \"sdpa\"") from None
        return "sdpa"
    try:
        unet.enable_xformers_memory_efficient_attention()
        _probe_xformers()
    except Exception as exc:  # an xformers build for another torch/CUDA fails in many ways
        unet.set_default_attn_processor()
        if wanted == "xformers":
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise PluginError(f"[train] attention = \"xformers\" does not work here ({reason}); "
                              "use \"sdpa\" or \"auto\"") from None
        return "sdpa (xformers is installed but failed its probe)"
    return "xformers"


def _probe_xformers() -> None:
    import torch
    import xformers.ops

    q = torch.randn(1, 8, 1, 40, device="cuda", dtype=torch.float16)
    xformers.ops.memory_efficient_attention(q, q, q)


class Trainer:
    """One training run. `run()` returns the paths of the LoRA files."""

    def __init__(self, job: Any, settings: Any, train_examples: list[Any], validation_examples: list[Any],
                 report: Any) -> None:
        self.job, self.settings, self.report = job, settings, report
        self.train_examples, self.validation_examples = train_examples, validation_examples
        self.run_dir: Path = job.run_dir
        self.history = History()
        self.position = Position()

    # -- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from peft import LoraConfig

        from lorakit_lora.data import LatentCache, TrainingData
        from lorakit_lora.models import load_base_model

        s = self.settings
        wants_cuda = self.job.device in ("auto", "cuda")
        if self.job.device == "cuda" and not torch.cuda.is_available():
            raise PluginError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
        cuda = wants_cuda and torch.cuda.is_available()
        self.mixed_precision = precision(s, cuda)
        # cpu=True is also what makes accelerate run several CPU processes as one gloo group
        self.accelerator = Accelerator(mixed_precision=self.mixed_precision, cpu=not cuda,
                                       gradient_accumulation_steps=s.gradient_accumulation)
        accelerator = self.accelerator
        self.device = accelerator.device
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mixed_precision, torch.float32)
        started = time.monotonic()
        self.report(f"loading base model {s.base_model}")
        base = load_base_model(s.base_model, self.job.allow_pickle, s.base_model_config or None, s.prediction_type)
        self.report(f"base model loaded in {time.monotonic() - started:.0f} s")
        self.base = base
        for module in base.modules:
            module.requires_grad_(False)
        torch.manual_seed(s.seed)  # the LoRA initialisation: the same seed gives the same starting weights
        base.unet.add_adapter(LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout,
                                         init_lora_weights="gaussian", target_modules=list(s.unet_targets)))
        if s.train_text_encoder:
            for encoder in base.text_encoders:
                encoder.add_adapter(LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout,
                                               init_lora_weights="gaussian",
                                               target_modules=list(s.text_encoder_targets)))
        # Base weights in half precision; LoRA weights (and so optimizer state) stay fp32.
        for module in base.modules:
            module.to(self.device)
        if self.weight_dtype != torch.float32:  # the VAE stays fp32: SD VAEs overflow in fp16
            for module in (base.unet, *base.text_encoders):
                module.to(dtype=self.weight_dtype)
        self.trainable = [p for m in (base.unet, *base.text_encoders) for p in m.parameters() if p.requires_grad]
        for parameter in self.trainable:
            parameter.data = parameter.data.float()
        self.attention = choose_attention(base.unet, s.attention, cuda)
        if s.gradient_checkpointing:
            base.unet.enable_gradient_checkpointing()
            if s.train_text_encoder:
                for encoder in base.text_encoders:
                    encoder.gradient_checkpointing_enable()
        self.optimizer = self._optimizer()
        self.data = TrainingData(self.train_examples, s)
        self.validation = TrainingData(self.validation_examples, s) if self.validation_examples else None
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        per_epoch = math.ceil(len(self._my_batches(0)) / s.gradient_accumulation)
        self.total_steps = s.max_steps or per_epoch * s.epochs
        from diffusers.optimization import get_scheduler

        self.lr_scheduler = get_scheduler(s.lr_scheduler, self.optimizer, num_warmup_steps=s.lr_warmup_steps,
                                          num_training_steps=max(1, self.total_steps))
        models = [base.unet] + (base.text_encoders if s.train_text_encoder else [])
        prepared = accelerator.prepare(*models, self.optimizer, self.lr_scheduler)
        self.unet = prepared[0]
        self.text_encoders = list(prepared[1:-2]) if s.train_text_encoder else base.text_encoders
        self.text_encoder = self.text_encoders[0]
        self.optimizer, self.lr_scheduler = prepared[-2], prepared[-1]
        self.generator = torch.Generator().manual_seed(s.seed * 1000 + self.rank)
        cache_folder = (self.job.cache_dir / "latents") if s.cache_latents else None
        if s.cache_latents and s.random_crop:
            raise ConfigError("[train] cache-latents and random-crop exclude each other (a cached latent is one "
                              "crop); turn one off")
        self.latents = LatentCache(cache_folder, LatentCache.vae_key(base.vae, base.source))
        self.text_cache: dict[str, Any] | None = (
            {} if s.cache_text_embeddings and not s.train_text_encoder and not s.augments_captions else None)
        if self.text_cache is not None:
            self.fill_text_cache([e.caption for e in self.train_examples + self.validation_examples])

    def _optimizer(self) -> Any:
        import torch

        s = self.settings
        if s.optimizer == "adamw8bit":
            try:
                import bitsandbytes as bnb
            except ImportError:
                raise PluginError("[train] optimizer = \"adamw8bit\" needs bitsandbytes: "
                                  "pip install 'lorakit[adamw8bit]'") from None
            return bnb.optim.AdamW8bit(self.trainable, lr=s.learning_rate, weight_decay=s.weight_decay)
        return torch.optim.AdamW(self.trainable, lr=s.learning_rate, weight_decay=s.weight_decay)

    def _my_batches(self, epoch: int) -> list[Any]:
        return self.data.epoch_batches(epoch)[self.rank::self.world]

    # -- one step ------------------------------------------------------------------------------

    def encode_latents(self, samples: list[Any]) -> Any:
        import torch

        from lorakit_lora.data import load_pixels

        def encode(sample: Any) -> Any:
            pixels = load_pixels(sample.example.image, sample.bucket, sample.crop, sample.flip)
            generator = torch.Generator().manual_seed(int(self.latents.key(sample)[:12], 16))
            with torch.no_grad():
                distribution = self.base.vae.encode(pixels[None].to(self.device)).latent_dist
                noise = torch.randn(distribution.mean.shape, generator=generator).to(self.device)
                latent = distribution.mean + distribution.std * noise
            return (latent * self.base.vae.config.scaling_factor)[0]

        latents = [self.latents.get(sample, encode) if self.settings.cache_latents else encode(sample).cpu()
                   for sample in samples]
        return torch.stack(latents).to(self.device, self.weight_dtype)

    def _encode(self, texts: list[str]) -> tuple[Any, Any]:
        """(hidden states the UNet attends to, pooled embedding or None). SDXL: both encoders'
        penultimate hidden states side by side, and the second encoder's projected pooled output."""
        hidden, pooled = [], None
        xl = self.base.text_encoder_2 is not None
        skip = self.settings.clip_skip if not xl else 1  # SDXL reads the penultimate layer by design (as kohya)
        for tokenizer, encoder in zip(self.base.tokenizers, self.text_encoders):
            tokens = tokenizer(texts, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                               return_tensors="pt")
            out = encoder(tokens.input_ids.to(self.device), output_hidden_states=xl or skip > 1)
            if xl:
                hidden.append(out.hidden_states[-2])
            elif skip > 1:  # an earlier layer, through the final layer norm (as kohya and A1111 do)
                hidden.append(getattr(encoder, "module", encoder).text_model.final_layer_norm(out.hidden_states[-skip]))
            else:
                hidden.append(out[0])
            if xl and hasattr(out, "text_embeds"):
                pooled = out.text_embeds
        import torch

        return (torch.cat(hidden, -1) if len(hidden) > 1 else hidden[0]), pooled

    def encode_text(self, captions: list[str]) -> tuple[Any, Any]:
        import torch

        if self.text_cache is None:
            return self._encode(captions)
        missing = [c for c in dict.fromkeys(captions) if c not in self.text_cache]
        if missing:  # normally none: every caption is encoded once, in a fixed order, at the start
            self.fill_text_cache(missing)
        hidden = torch.stack([self.text_cache[c][0] for c in captions])
        pooled = None if self.text_cache[captions[0]][1] is None else \
            torch.stack([self.text_cache[c][1] for c in captions])
        return hidden, pooled

    def fill_text_cache(self, captions: list[str]) -> None:
        """Encode captions in sorted order and fixed-size chunks: the same floating-point results in
        every run, however batches fall (a resumed run must match an uninterrupted one exactly)."""
        import torch

        ordered = sorted(set(captions))
        with torch.no_grad():
            for start in range(0, len(ordered), 16):
                chunk = ordered[start:start + 16]
                hidden, pooled = self._encode(chunk)
                for i, caption in enumerate(chunk):
                    self.text_cache[caption] = (hidden[i].detach(), None if pooled is None else pooled[i].detach())

    def loss(self, samples: list[Any], generator: Any) -> Any:
        import torch
        import torch.nn.functional as F

        s, scheduler = self.settings, self.base.noise_scheduler
        latents = self.encode_latents(samples)
        noise = torch.randn(latents.shape, generator=generator)
        if s.noise_offset:
            noise = noise + s.noise_offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1),
                                                         generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator)
        noise, timesteps = noise.to(self.device, latents.dtype), timesteps.to(self.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        target = scheduler.get_velocity(latents, noise, timesteps) if self.base.prediction_type == "v_prediction" \
            else noise
        hidden, pooled = self.encode_text([sample.caption for sample in samples])
        extra = {}
        if pooled is not None:  # SDXL: pooled text and size/crop conditioning
            extra["added_cond_kwargs"] = {"text_embeds": pooled.to(self.weight_dtype),
                                          "time_ids": self._time_ids(samples).to(self.device, self.weight_dtype)}
        with self.accelerator.autocast():
            prediction = self.unet(noisy, timesteps, hidden.to(self.weight_dtype), **extra).sample
        per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        if s.min_snr_gamma > 0:
            per_sample = per_sample * self._snr_weights(timesteps)
        return per_sample.mean()

    def _time_ids(self, samples: list[Any]) -> Any:
        """SDXL micro-conditioning: original size, crop top-left, target size (all height, width)."""
        import torch

        from lorakit_lora.data import crop_origin

        rows = []
        for sample in samples:
            data = self.data if sample.example.name in self.data.size_of else self.validation
            width, height = data.size_of[sample.example.name]
            top, left = crop_origin((width, height), sample.bucket, sample.crop)
            rows.append([height, width, top, left, sample.bucket[1], sample.bucket[0]])
        return torch.tensor(rows, dtype=torch.float32)

    def _snr_weights(self, timesteps: Any) -> Any:
        return min_snr_weights(self.base.noise_scheduler.alphas_cumprod, timesteps, self.settings.min_snr_gamma,
                               self.base.prediction_type)

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        s, accelerator = self.settings, self.accelerator
        self.started_at = int(time.time())
        if self.job.resume:
            self._load_checkpoint()
        self.report(f"training {len(self.train_examples)} images ({len(self.validation_examples)} held out) on "
                    f"{self.device} with {self.world} process(es), precision {self.mixed_precision}, attention "
                    f"{self.attention}, {self.total_steps} steps")
        stop = False
        progress = Progress(self.report, self.total_steps, self.position.step,
                            caching=s.cache_latents and not self.job.resume)
        epochs = 10**9 if s.max_steps else s.epochs  # max-steps, when set, decides alone (as in kohya)
        while self.position.epoch < epochs and not stop:
            epoch = self.position.epoch
            batches = self._my_batches(epoch)
            for index in range(self.position.batch, len(batches)):
                mean_loss = self.train_step(batches[index])
                self.position.batch = index + 1
                self.position.epoch_losses.append(mean_loss)
                if accelerator.sync_gradients:
                    self.position.step += 1
                    self.history.step_losses.append(mean_loss)
                    self.history.step_rates.append(float(self.lr_scheduler.get_last_lr()[0]))
                    progress.step(self.position.step, mean_loss, self.history.step_rates[-1])
                    if s.save_every_steps and self.position.step % s.save_every_steps == 0:
                        self._save_checkpoint()
                    if s.max_steps and self.position.step >= s.max_steps:
                        stop = True
                        break
            stop = self._end_epoch(epoch, completed=self.position.batch >= len(batches)) or stop
        accelerator.wait_for_everyone()

    def train_step(self, samples: list[Any]) -> float:
        """Forward, backward and (at the end of an accumulation) an optimizer step; the batch loss
        averaged over the processes."""
        accelerator, s = self.accelerator, self.settings
        with accelerator.accumulate(*self.trained_models):
            loss = self.loss(samples, self.generator)
            accelerator.backward(loss)
            if accelerator.sync_gradients and s.max_grad_norm > 0:
                accelerator.clip_grad_norm_(self.trainable, s.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return float(accelerator.reduce(loss.detach().float(), reduction="mean"))

    @property
    def trained_models(self) -> list[Any]:
        return [self.unet] + (self.text_encoders if self.settings.train_text_encoder else [])

    def _end_epoch(self, epoch: int, completed: bool) -> bool:
        s = self.settings
        train_loss = sum(self.position.epoch_losses) / max(1, len(self.position.epoch_losses))
        validation_loss = self.validation_loss()
        row = {"epoch": epoch + 1, "step": self.position.step, "train_loss": round(train_loss, 6),
               "validation_loss": "" if validation_loss is None else round(validation_loss, 6),
               "learning_rate": self.lr_scheduler.get_last_lr()[0]}
        self.history.rows.append(row)
        of = "" if s.max_steps else f"/{s.epochs}"
        self.report(f"epoch {epoch + 1}{of}: train loss {train_loss:.4f}"
                    + ("" if validation_loss is None else f", validation loss {validation_loss:.4f}"))
        stop = False
        if validation_loss is not None and s.early_stopping_patience > 0:
            if validation_loss < self.position.best_validation - 1e-6:
                self.position.best_validation, self.position.epochs_without_improvement = validation_loss, 0
            else:
                self.position.epochs_without_improvement += 1
                if self.position.epochs_without_improvement >= s.early_stopping_patience:
                    self.report(f"early stopping: no validation improvement for {s.early_stopping_patience} epochs")
                    stop = True
        if s.validation_prompts and s.sample_every_epochs and (epoch + 1) % s.sample_every_epochs == 0:
            self.sample_grid(f"samples-epoch-{epoch + 1:03d}.png")
        if completed:
            self.position.epoch, self.position.batch, self.position.epoch_losses = epoch + 1, 0, []
        if s.save_every_epochs and (epoch + 1) % s.save_every_epochs == 0 and completed and not stop:
            self._save_checkpoint()
        return stop or not completed

    def validation_loss(self) -> float | None:
        import torch

        if self.validation is None:
            return None
        generator = torch.Generator().manual_seed(self.settings.seed + 7919)  # the same noise every epoch
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in self.validation.fixed_batches():
                total += float(self.loss(batch, generator)) * len(batch)
                count += len(batch)
        return total / max(1, count)

    # -- checkpoints ---------------------------------------------------------------------------

    def _trainable_state(self) -> dict[str, Any]:
        return {name: p.detach().cpu().clone() for name, p in self._named_trainable()}

    def _save_checkpoint(self) -> None:
        import torch

        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        state = {
            "position": self.position.__dict__.copy(),
            "history": {"rows": self.history.rows, "step_losses": self.history.step_losses,
                        "step_rates": self.history.step_rates},
            "weights": self._trainable_state(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
            "generator": self.generator.get_state(),
            "world": self.world,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        folder = self.run_dir / CHECKPOINTS
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / f"step-{self.position.step:07d}.rank{self.rank}.pt", buffer.getvalue())
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            steps = sorted({p.name.split(".")[0] for p in folder.glob("step-*.pt")})
            for old in steps[:-KEEP_CHECKPOINTS]:
                for path in folder.glob(f"{old}.rank*.pt"):
                    path.unlink(missing_ok=True)

    def _load_checkpoint(self) -> None:
        # A killed run leaves the temporary files of the writes it was in (atomic writes: the
        # target was never replaced). Resuming owns the run folder again: they go.
        if self.rank == 0 and self.run_dir.is_dir():
            for stale in (*self.run_dir.glob("*.lorakit-tmp"), *self.run_dir.glob("*/*.lorakit-tmp")):
                if stale.is_file() and not stale.is_symlink():
                    stale.unlink(missing_ok=True)
        folder = self.run_dir / CHECKPOINTS
        steps = sorted({p.name.split(".")[0] for p in folder.glob("step-*.pt")}) if folder.is_dir() else []
        complete = [s for s in steps if (folder / f"{s}.rank{self.rank}.pt").is_file()
                    and all((folder / f"{s}.rank{r}.pt").is_file() for r in range(self.world))]
        if not complete:
            self.report("no checkpoint to resume from: starting at step 0")
            return
        path = folder / f"{complete[-1]}.rank{self.rank}.pt"
        state = load_checkpoint_state(path)
        if state["world"] != self.world:
            raise PluginError(f"{folder}: the checkpoint was written by {state['world']} processes; resume with the "
                              "same number")
        by_name = dict(self._named_trainable())
        for name, tensor in state["weights"].items():
            by_name[name].data.copy_(tensor.to(by_name[name].device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        if state["scaler"] is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.position = Position(**state["position"])
        self.history = History(state["history"]["rows"], state["history"]["step_losses"],
                               state["history"].get("step_rates", []))
        self.report(f"resumed from {complete[-1]} (epoch {self.position.epoch + 1}, step {self.position.step})")

    def _named_trainable(self) -> list[tuple[str, Any]]:
        return [(f"{i}.{type(m).__name__}.{n}", p) for i, m in enumerate((self.base.unet, *self.base.text_encoders))
                for n, p in m.named_parameters() if p.requires_grad]

    # -- samples -------------------------------------------------------------------------------

    def sample_grid(self, filename: str) -> Path | None:
        import torch
        from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

        s = self.settings
        if not s.validation_prompts or not self.accelerator.is_main_process:
            return None
        unwrap = self.accelerator.unwrap_model
        parts = dict(vae=self.base.vae, unet=unwrap(self.unet), tokenizer=self.base.tokenizer,
                     text_encoder=unwrap(self.text_encoders[0]),
                     scheduler=DPMSolverMultistepScheduler.from_config(self.base.noise_scheduler.config))
        if self.base.text_encoder_2 is not None:
            from diffusers import StableDiffusionXLPipeline

            pipeline = StableDiffusionXLPipeline(**parts, tokenizer_2=self.base.tokenizer_2,
                                                 text_encoder_2=unwrap(self.text_encoders[1]))
        else:
            pipeline = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                               requires_safety_checker=False)
        pipeline.set_progress_bar_config(disable=True)
        size = s.resolution
        images = []
        with torch.no_grad():
            for i, prompt in enumerate(s.validation_prompts):
                generator = torch.Generator().manual_seed(s.seed + i)
                images.append(pipeline(prompt, num_inference_steps=s.sample_steps, generator=generator,
                                       height=size, width=size).images[0])
        path = self.run_dir / filename
        save_grid(images, path)
        return path


def save_grid(images: list[Any], path: Path) -> None:
    from PIL import Image

    columns = min(4, len(images))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height), "white")
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * width, (i // columns) * height))
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


#: What a lorakit checkpoint holds at its top level (anything else is not one of ours).
CHECKPOINT_KEYS = {"position", "history", "weights", "optimizer", "lr_scheduler", "scaler", "generator", "world"}


def load_checkpoint_state(path: Path) -> dict[str, Any]:
    """A training checkpoint, loaded with torch's weights-only unpickler: tensors, numbers,
    strings and containers, never code. A file planted in a run folder therefore cannot run
    anything; a damaged or foreign one is a one-line error naming it."""
    import pickle
    import warnings

    import torch

    def refuse(why: str) -> PluginError:
        return PluginError(f"{path}: cannot resume from this checkpoint ({why}); delete it to resume from the one "
                           "before, or train without --resume")

    try:
        with warnings.catch_warnings():  # torch's notes about foreign pickle protocols: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise refuse(f"it holds more than tensors and numbers, which lorakit never loads: {first[:200]}") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise refuse(f"damaged or not a checkpoint: {type(exc).__name__}") from None
    if not isinstance(state, dict) or not set(state) >= CHECKPOINT_KEYS:
        raise refuse("not a lorakit checkpoint")
    return state


def min_snr_weights(alphas_cumprod: Any, timesteps: Any, gamma: float, prediction_type: str) -> Any:
    """Min-SNR-gamma loss weights (Hang et al. 2023): min(SNR, gamma) / SNR for epsilon targets,
    min(SNR, gamma) / (SNR + 1) for v. A zero-terminal-SNR schedule (`rescale_betas_zero_snr`) has
    SNR 0 at its last step: there the epsilon weight is its limit, 1 (0/0 would make the loss NaN)."""
    import torch

    alphas = alphas_cumprod.to(timesteps.device)[timesteps].double()
    snr = alphas / (1 - alphas)
    capped = torch.minimum(snr, torch.full_like(snr, gamma))
    if prediction_type == "v_prediction":
        return (capped / (snr + 1)).float()
    return torch.where(snr > 0, capped / snr.clamp_min(1e-30), torch.ones_like(snr)).float()

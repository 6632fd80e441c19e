"""The trainer's keys of `[train]` and the resolved settings of one run (no heavy imports: the
section is registered whenever lorakit loads its plugins, `lorakit lint` included)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lora_core.config import Bool, ConfigKey, ConfigSection, Float, Int, ListOf, Str

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# Presets of [train] targets: which modules get LoRA layers.
# - attention (default): the attention projections only: 128 U-Net modules on SD 1.5. Smaller
#   files and steps, the part of the U-Net that binds words to image features, and what earlier
#   lorakit versions trained (a default that changed would change every user's next run).
# - kohya: kohya sd-scripts' default `networks.lora` set: every Linear and 1x1 conv inside the
#   U-Net's transformer blocks (attention, feed-forward, proj_in/proj_out: 192 modules on SD 1.5)
#   and the text encoders' attention and MLP (fc1, fc2); for parity with a kohya run.
TARGET_PRESETS = {
    "attention": (UNET_TARGETS, TEXT_ENCODER_TARGETS),
    "kohya": (["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"],
              ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]),
}

TRAINER_SECTION = ConfigSection(
    "train",
    "Training settings (the trainer reads these; LK7xx checks them).",
    [
        ConfigKey("base-model-config", Str(), "",
                  "For a single-file base model: a diffusers folder of the same architecture (configs and tokenizer "
                  "suffice) to read it against, offline. Unset: lorakit's own SD 1.5, SD 2.1 or SDXL configs, "
                  "chosen from the checkpoint's keys."),
        ConfigKey("prediction-type", Str(["auto", "epsilon", "v_prediction"]), "auto",
                  "What the UNet predicts. auto: the base model's scheduler config (lorakit's SD 2.1 configs say "
                  "v_prediction: set epsilon for a single-file SD 2.x 512-base checkpoint)."),
        ConfigKey("name", Str(), "", "Run name (default: the dataset folder's name); runs go to output-dir/name-tag."),
        ConfigKey("output-dir", Str(), "runs", "Folder of the run folders (relative to the current folder)."),
        ConfigKey("resolution", Int(64), 512, "Training resolution: buckets hold about resolution² pixels."),
        ConfigKey("bucketing", Bool(), True, "Aspect-ratio buckets (multiples of 64) instead of square crops."),
        ConfigKey("random-crop", Bool(), False, "Random instead of center crops (not with cache-latents)."),
        ConfigKey("flip", Bool(), False, "Random horizontal flips."),
        ConfigKey("batch-size", Int(1), 1, "Images per step and process."),
        ConfigKey("gradient-accumulation", Int(1), 1, "Steps whose gradients add up before one optimizer step."),
        ConfigKey("max-steps", Int(0), 0, "Stop after this many optimizer steps (0: epochs decide)."),
        ConfigKey("seed", Int(0), 42, "Seed of every random choice: data order, augmentation, noise, timesteps."),
        ConfigKey("mixed-precision", Str(["auto", "fp16", "bf16", "no"]), "auto",
                  "auto: bf16 (or fp16) on CUDA, no on CPU. fp16 keeps LoRA weights and optimizer state in fp32 "
                  "with a gradient scaler; fp16 on a CPU is an error."),
        ConfigKey("attention", Str(["auto", "xformers", "sdpa"]), "auto",
                  "auto: xformers memory-efficient attention when installed and working on this GPU, else SDPA."),
        ConfigKey("gradient-checkpointing", Bool(), False, "Recompute activations in backward: less memory, slower."),
        ConfigKey("cache-latents", Bool(), True,
                  "Encode each image once (keyed by content, size, flip and VAE) instead of every step."),
        ConfigKey("cache-text-embeddings", Bool(), True,
                  "Encode each caption once when the text encoder is frozen and captions are not augmented."),
        ConfigKey("optimizer", Str(["adamw", "adamw8bit"]), "adamw", "adamw8bit needs bitsandbytes."),
        ConfigKey("lr-scheduler", Str(["constant", "cosine", "linear"]), "constant", "Learning-rate schedule."),
        ConfigKey("lr-warmup-steps", Int(0), 0, "Linear warm-up steps."),
        ConfigKey("weight-decay", Float(0.0), 1e-2, "AdamW weight decay."),
        ConfigKey("max-grad-norm", Float(0.0), 1.0, "Gradient clipping (0: off)."),
        ConfigKey("dropout", Float(0.0, 0.9), 0.0, "LoRA dropout."),
        ConfigKey("targets", Str(sorted(TARGET_PRESETS)), "attention",
                  "Which modules get LoRA layers: attention (default: the attention projections, 128 SD 1.5 U-Net "
                  "modules) or kohya (kohya's default set: also feed-forward and proj_in/proj_out, 192 modules, "
                  "and the text encoders' MLP). unet-targets / text-encoder-targets, when set, win."),
        ConfigKey("unet-targets", ListOf(Str()), UNET_TARGETS,
                  "UNet modules that get LoRA layers (left at this default, `targets = \"kohya\"` uses its own)."),
        ConfigKey("train-text-encoder", Bool(), False, "Also train LoRA layers on the text encoder(s)."),
        ConfigKey("text-encoder-targets", ListOf(Str()), TEXT_ENCODER_TARGETS,
                  "Text-encoder modules that get LoRA layers (left at this default, `targets = \"kohya\"` uses its "
                  "own; out_proj is in both presets: kohya files without it do not load in diffusers)."),
        ConfigKey("clip-skip", Int(1, 12), 1,
                  "Text-encoder layer the captions are read from, counted from the end (1: the last, as SD 1.5 "
                  "was trained; 2 for NovelAI-style anime models). Recorded as ss_clip_skip."),
        ConfigKey("noise-offset", Float(0.0), 0.0, "Noise offset (0.05-0.1 helps very dark or bright images)."),
        ConfigKey("min-snr-gamma", Float(0.0), 0.0, "Min-SNR loss weighting gamma (5 is usual; 0: off)."),
        ConfigKey("shuffle-captions", Bool(), False,
                  "Shuffle comma-separated tags each step, keeping the first [entities] keep-tokens in place."),
        ConfigKey("caption-dropout", Float(0.0, 1.0), 0.0, "Share of steps an image trains with an empty caption."),
        ConfigKey("validation-file", Str(), "", "A metadata file of validation images (instead of a split)."),
        ConfigKey("validation-prompts", ListOf(Str()), [], "Prompts rendered into a sample grid during training."),
        ConfigKey("sample-every-epochs", Int(0), 1, "Sample grid frequency (0: only at the end)."),
        ConfigKey("sample-steps", Int(1), 20, "Denoising steps per sample image."),
        ConfigKey("save-every-epochs", Int(0), 1, "Resumable checkpoint frequency in epochs (0: off)."),
        ConfigKey("save-every-steps", Int(0), 0, "Resumable checkpoint frequency in steps (0: off)."),
    ],
)


@dataclass
class TrainSettings:
    """`[train]` resolved for one run (every key has a value)."""

    base_model: str = ""
    base_model_config: str = ""
    prediction_type: str = "auto"
    epochs: int = 10
    learning_rate: float = 1e-4
    rank: int = 16
    alpha: float = 16.0
    validation_split: float = 0.0
    early_stopping_patience: int = 0
    name: str = ""
    output_dir: str = "runs"
    resolution: int = 512
    bucketing: bool = True
    random_crop: bool = False
    flip: bool = False
    batch_size: int = 1
    gradient_accumulation: int = 1
    max_steps: int = 0
    seed: int = 42
    mixed_precision: str = "auto"
    attention: str = "auto"
    gradient_checkpointing: bool = False
    cache_latents: bool = True
    cache_text_embeddings: bool = True
    optimizer: str = "adamw"
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    dropout: float = 0.0
    targets: str = "attention"
    unet_targets: list[str] = field(default_factory=lambda: list(UNET_TARGETS))
    train_text_encoder: bool = False
    text_encoder_targets: list[str] = field(default_factory=lambda: list(TEXT_ENCODER_TARGETS))
    clip_skip: int = 1
    noise_offset: float = 0.0
    min_snr_gamma: float = 0.0
    shuffle_captions: bool = False
    caption_dropout: float = 0.0
    keep_tokens: int = 0  # from [entities]
    validation_file: str = ""
    validation_prompts: list[str] = field(default_factory=list)
    sample_every_epochs: int = 1
    sample_steps: int = 20
    save_every_epochs: int = 1
    save_every_steps: int = 0

    @classmethod
    def from_config(cls, train: dict[str, Any], entities: dict[str, Any] | None = None) -> TrainSettings:
        known = set(cls.__dataclass_fields__)
        values = {k.replace("-", "_"): v for k, v in train.items() if k.replace("-", "_") in known}
        settings = cls(**values)
        settings.keep_tokens = int((entities or {}).get("keep-tokens", 0) or 0)
        unet, text = TARGET_PRESETS.get(settings.targets, TARGET_PRESETS["attention"])
        # a list changed from its default wins over the preset; the default (the attention preset's
        # list) gives way to the chosen preset
        if list(settings.unet_targets) in ([], UNET_TARGETS):
            settings.unet_targets = list(unet)
        if list(settings.text_encoder_targets) in ([], TEXT_ENCODER_TARGETS):
            settings.text_encoder_targets = list(text)
        return settings

    def as_dict(self) -> dict[str, Any]:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @property
    def augments_captions(self) -> bool:
        return self.shuffle_captions or self.caption_dropout > 0

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
        ConfigKey("base-model", Str(), "", "Base model: a diffusers folder, a hub id, or a .safetensors file."),
        ConfigKey("epochs", Int(1), 10, "Passes over the dataset."),
        ConfigKey("learning-rate", Float(0.0), 1e-4, "Optimizer learning rate."),
        ConfigKey("rank", Int(1), 16, "LoRA rank."),
        ConfigKey("alpha", Float(0.0), 16.0, "LoRA alpha (scale = alpha / rank)."),
        ConfigKey("validation-split", Float(0.0, 0.9), 0.0, "Share of images held out for validation loss."),
        ConfigKey("early-stopping-patience", Int(0), 0,
                  "Epochs without validation improvement before stopping (0: off)."),
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


#: Every [train] key's default, from the section: the dataclass below repeats none of them.
_DEFAULTS: dict[str, Any] = TRAINER_SECTION.defaults()


@dataclass
class TrainSettings:
    """`[train]` resolved for one run (every key has a value). The defaults are the section's own
    (`TRAINER_SECTION`), the one place they are written."""

    base_model: str = _DEFAULTS["base-model"]
    base_model_config: str = _DEFAULTS["base-model-config"]
    prediction_type: str = _DEFAULTS["prediction-type"]
    epochs: int = _DEFAULTS["epochs"]
    learning_rate: float = _DEFAULTS["learning-rate"]
    rank: int = _DEFAULTS["rank"]
    alpha: float = _DEFAULTS["alpha"]
    validation_split: float = _DEFAULTS["validation-split"]
    early_stopping_patience: int = _DEFAULTS["early-stopping-patience"]
    name: str = _DEFAULTS["name"]
    output_dir: str = _DEFAULTS["output-dir"]
    resolution: int = _DEFAULTS["resolution"]
    bucketing: bool = _DEFAULTS["bucketing"]
    random_crop: bool = _DEFAULTS["random-crop"]
    flip: bool = _DEFAULTS["flip"]
    batch_size: int = _DEFAULTS["batch-size"]
    gradient_accumulation: int = _DEFAULTS["gradient-accumulation"]
    max_steps: int = _DEFAULTS["max-steps"]
    seed: int = _DEFAULTS["seed"]
    mixed_precision: str = _DEFAULTS["mixed-precision"]
    attention: str = _DEFAULTS["attention"]
    gradient_checkpointing: bool = _DEFAULTS["gradient-checkpointing"]
    cache_latents: bool = _DEFAULTS["cache-latents"]
    cache_text_embeddings: bool = _DEFAULTS["cache-text-embeddings"]
    optimizer: str = _DEFAULTS["optimizer"]
    lr_scheduler: str = _DEFAULTS["lr-scheduler"]
    lr_warmup_steps: int = _DEFAULTS["lr-warmup-steps"]
    weight_decay: float = _DEFAULTS["weight-decay"]
    max_grad_norm: float = _DEFAULTS["max-grad-norm"]
    dropout: float = _DEFAULTS["dropout"]
    targets: str = _DEFAULTS["targets"]
    unet_targets: list[str] = field(default_factory=lambda: list(_DEFAULTS["unet-targets"]))
    train_text_encoder: bool = _DEFAULTS["train-text-encoder"]
    text_encoder_targets: list[str] = field(default_factory=lambda: list(_DEFAULTS["text-encoder-targets"]))
    clip_skip: int = _DEFAULTS["clip-skip"]
    noise_offset: float = _DEFAULTS["noise-offset"]
    min_snr_gamma: float = _DEFAULTS["min-snr-gamma"]
    shuffle_captions: bool = _DEFAULTS["shuffle-captions"]
    caption_dropout: float = _DEFAULTS["caption-dropout"]
    keep_tokens: int = 0  # from [entities]
    validation_file: str = _DEFAULTS["validation-file"]
    validation_prompts: list[str] = field(default_factory=lambda: list(_DEFAULTS["validation-prompts"]))
    sample_every_epochs: int = _DEFAULTS["sample-every-epochs"]
    sample_steps: int = _DEFAULTS["sample-steps"]
    save_every_epochs: int = _DEFAULTS["save-every-epochs"]
    save_every_steps: int = _DEFAULTS["save-every-steps"]

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

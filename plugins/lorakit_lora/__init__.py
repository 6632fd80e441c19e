"""The `lora` trainer: LoRA for Stable Diffusion 1.x / 2.x / XL through diffusers, peft and accelerate.

    lorakit train data/                      # lint gate, then runs/<name>-<tag>/
    accelerate launch -m lora_core.cli train data/ --tag v2     # several GPUs or processes

Owns `[train]`: every key, its type and default is registered here (lorakit_lora.settings); the
LK7xx rules only read it. Also reads `[entities] keep-tokens`, and contributes `lorakit generate`.
Writes `pytorch_lora_weights.safetensors` (diffusers/peft layout with adapter metadata) and
`<name>.safetensors` (kohya / A1111 layout with ss_* and modelspec metadata), loss.csv and
loss.png, sample grids and resumable checkpoints. torch, diffusers and peft are imported when
training starts (`pip install 'lorakit[train]'`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lora_core.hookspecs import hookimpl
from lora_core.plugins import Registry, load_plugins

#: What this plugin needs beyond the core install: `lorakit plugins` says which is missing and how to
#: install it (checked without importing anything).
REQUIRES = ("torch", "diffusers", "peft", "accelerate")
INSTALL = "pip install 'lorakit[train]'"

if TYPE_CHECKING:  # imported when used: listing commands (`lorakit --help`) loads this module too
    from lora_core.train import TrainJob, TrainOutcome

__version__ = "0.1.0"


class LoraTrainer:
    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry

    def preflight(self, job: TrainJob) -> None:
        """The base model, checked before the run folder and the 30 s of torch/diffusers imports."""
        from lora_core.errors import ConfigError
        from lora_core.toolkit.hub import PICKLE_SUFFIXES

        train = job.config.section("train")
        base = job.resolve(str(train.get("base-model") or ""))
        where = f"under [train] in {job.config.path}" if job.config.path else \
            "in a lorakit.toml beside the dataset, under [train]"
        if not base:
            raise ConfigError(f"[train] base-model is not set: pass --base-model (a diffusers folder, a hub id in "
                              f"the local cache, or a .safetensors file), or write `base-model = \"...\"` {where}")
        path = Path(base).expanduser()
        if path.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES) and not path.is_file():
            raise ConfigError(f"base model {base}: no such file (set by --base-model or [train] base-model {where})")
        if path.is_absolute() and not path.exists():
            raise ConfigError(f"base model {base}: no such folder (set by --base-model or [train] base-model {where})")

    def train(self, job: TrainJob) -> TrainOutcome:
        import logging

        # bitsandbytes, imported by diffusers/peft when installed, warns at import about 4-bit CPU
        # kernels lorakit never uses
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
        from lora_core.plugins import missing_requirements

        missing = missing_requirements(sys.modules[__name__])
        if missing:
            from lora_core.errors import PluginError

            raise PluginError(f"trainer lora needs {', '.join(missing)}: {INSTALL}")
        import os

        if not os.environ.get("LORAKIT_VERBOSE"):
            # diffusers' and transformers' notes for library developers ("please open an issue",
            # deprecations inside their own code) read as errors to a newcomer: errors still show.
            for library in ("diffusers", "transformers"):
                logging.getLogger(library).setLevel(logging.ERROR)
        from lora_core.train import TrainOutcome
        from lorakit_lora import export, monitor
        from lorakit_lora.data import examples_from, split_validation
        from lorakit_lora.loop import Trainer
        from lorakit_lora.settings import TrainSettings

        settings = TrainSettings.from_config(job.config.section("train"), job.config.section("entities"))
        settings.base_model = job.resolve(settings.base_model)
        settings.base_model_config = job.resolve(settings.base_model_config)
        examples = examples_from(job.dataset)
        if settings.validation_file:
            train_examples, validation = examples, self._validation_file(job, settings)
        else:
            train_examples, validation = split_validation(examples, settings.validation_split, settings.seed)
        trainer = Trainer(job, settings, train_examples, validation, job.report)
        trainer.setup()
        trainer.run()
        outcome = TrainOutcome(steps=trainer.position.step, epochs=len(trainer.history.rows))
        if not trainer.accelerator.is_main_process:
            return outcome
        unet = trainer.accelerator.unwrap_model(trainer.unet)
        text_encoders = ([trainer.accelerator.unwrap_model(e) for e in trainer.text_encoders]
                         if settings.train_text_encoder else [])
        run = Path(job.run_dir)
        outcome.files["diffusers"] = export.write_diffusers(run, unet, text_encoders, settings.rank, settings.alpha,
                                                            list(settings.unet_targets),
                                                            list(settings.text_encoder_targets))
        provenance = {"name": job.name, "tag": job.tag, "lint_summary": job.lint_summary,
                      "allow_lint_errors": job.allow_lint_errors, "started_at": trainer.started_at,
                      "mixed_precision": trainer.mixed_precision}
        outcome.files["kohya"] = export.write_kohya(run / f"{job.name}.safetensors", unet, text_encoders, settings,
                                                    trainer.base, train_examples, provenance, outcome.steps,
                                                    outcome.epochs)
        outcome.files["loss_csv"] = monitor.write_csv(trainer.history.rows, run / "loss.csv")
        outcome.files["loss_png"] = monitor.draw(trainer.history.rows, run / "loss.png",
                                                 steps=list(zip(trainer.history.step_losses,
                                                                trainer.history.step_rates)))
        if settings.validation_prompts:
            grid = trainer.sample_grid("samples-final.png")
            if grid is not None:
                outcome.files["samples"] = grid
        warning = monitor.noise_warning(trainer.history.rows)
        if warning:
            job.warn(warning)
            outcome.warnings.append(warning)
        return outcome

    def _validation_file(self, job: TrainJob, settings: Any) -> list[Any]:
        from lora_core.api import LintOptions, dataset_settings
        from lora_core.datasets import open_dataset
        from lorakit_lora.data import examples_from

        path = Path(job.resolve(settings.validation_file))
        registry = self.registry if self.registry is not None else load_plugins()
        dataset = open_dataset(path, dataset_settings(job.config, LintOptions()), registry.readers)
        return examples_from(dataset)


@hookimpl
def register_config(register: Callable[[Any], None]) -> None:
    from lorakit_lora.settings import TRAINER_SECTION

    register(TRAINER_SECTION)


@hookimpl
def register_commands(register: Callable[[Any], None]) -> None:
    from lorakit_lora.commands import generate

    register(generate)


@hookimpl
def register_trainers(register: Callable[..., None]) -> None:
    register("lora", LoraTrainer, description="LoRA for Stable Diffusion 1.x/2.x/XL (diffusers + peft + accelerate)")

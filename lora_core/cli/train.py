"""`lorakit train DATASET`: lint gate, then a trainer plugin writes a run folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lora_core.cli import EXIT_FAILURE, EXIT_VIOLATIONS, cli
from lora_core.cli.options import build_registry, plugin_options


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to use.")
@click.option("--trainer", default="lora", show_default=True, help="Trainer plugin (see `lorakit plugins`).")
@click.option("--tag", help="Run tag: the run folder is <output-dir>/<name>-<tag> [default: date-time].")
@click.option("--resume", is_flag=True,
              help="Continue the run with this --tag (or the latest run) from its last checkpoint.")
@click.option("--allow-lint-errors", is_flag=True,
              help="Train although lint reports errors (recorded in the run folder and the LoRA's metadata).")
@click.option("--allow-pickle", is_flag=True, help="Allow a pickle base model (.ckpt/.pt/.bin): it can run code.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--base-model", metavar="MODEL",
              help="Base model (diffusers folder, cached hub id, .safetensors file); wins over [train] base-model.")
@click.option("--base-model-config", metavar="FOLDER",
              help="diffusers config folder for a single-file base model of another variant.")
@plugin_options
def train(dataset: Path, config: Path | None, trainer: str, tag: str | None, resume: bool,
          allow_lint_errors: bool, allow_pickle: bool, device: str, base_model: str | None,
          base_model_config: str | None, plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """Lint DATASET and its [train] config; train a LoRA only when no error is left.

    \b
    Examples:
      lorakit train data/ --base-model ./sd15      # runs/data-<date-time>/
      lorakit train data/ --tag v1.2-prompt-fix
      lorakit train data/ --tag v1.2-prompt-fix --resume
      accelerate launch -m lora_core.cli train data/ --tag multi-gpu
    """
    import os

    from lora_core.reporters import Report
    from lora_core.reporters.concise import render_concise
    from lora_core.train import TrainingBlocked, TrainOptions
    from lora_core.train import train as run_training

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    registry = build_registry(plugin_flags, require_plugins)
    options = TrainOptions(trainer=trainer, config=config, tag=tag, resume=resume,
                           allow_lint_errors=allow_lint_errors, allow_pickle=allow_pickle, device=device,
                           base_model=base_model, base_model_config=base_model_config)
    main_process = os.environ.get("RANK", "0") in ("", "0")

    def report(message: str) -> None:
        if main_process:
            click.echo(f"lorakit: {message}", err=True)

    def warn(message: str) -> None:
        if main_process:
            click.echo(f"lorakit: warning: {message}", err=True)

    try:
        outcome, _, folder = run_training(dataset, options, registry, report, warn)
    except TrainingBlocked as blocked:
        if main_process:
            render_concise(Report(blocked.result), sys.stdout)
            click.echo(f"lorakit: training blocked: {blocked.errors} lint error(s) (fix them, or pass "
                       "--allow-lint-errors for an experiment)", err=True)
        click.get_current_context().exit(EXIT_VIOLATIONS)
        return
    if main_process:
        click.echo(f"lorakit: trained {outcome.steps} steps, {outcome.epochs} epoch(s) into {folder}", err=True)
        for role, path in outcome.files.items():
            click.echo(f"  {role:<9} {path}")
    if not outcome.files and main_process:
        click.get_current_context().exit(EXIT_FAILURE)

"""`lorakit caption IMAGES_DIR`: caption images with captioner plugins, then lint the result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lora_core import api
from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options
from lora_core.reporters import Report


@cli.command()
@click.argument("images_dir", type=click.Path(path_type=Path))
@click.option("--captioner", "captioners", multiple=True, required=True, metavar="NAME",
              help="Captioner plugin to use (repeatable; several vote per image). See `lorakit plugins`.")
@click.option("--model", "models", multiple=True, metavar="[NAME=]ID_OR_PATH",
              help="Model id or folder for a captioner (NAME= picks which; repeatable).")
@click.option("--output", default="metadata.csv", show_default=True,
              help="`metadata.csv` (or another .csv name) in IMAGES_DIR, or `sidecars` (img.txt beside each image).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--resume", is_flag=True, help="Keep existing captions; caption only the images without one.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--vote", type=click.Choice(["consensus", "clip", "join"]), default="consensus", show_default=True,
              help="How several captioners' drafts become one caption: consensus, CLIP similarity, or `join` "
                   "(every draft in one caption: a tagger's tags, then a VLM's sentence).")
@click.option("--keep-candidates", is_flag=True, help="Add a `candidates` CSV column: every draft, the vote, scores.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["auto", "fp16", "bf16", "fp32"]), default="auto", show_default=True)
@click.option("--clip-model", metavar="ID_OR_PATH",
              help="CLIP model for --vote clip (default openai/clip-vit-large-patch14; a hub id or a folder).")
@click.option("--template", is_flag=True,
              help="Fill the [template] pattern's slots by asking a question-answering captioner (blip2).")
@click.option("--prompt", help="Text prompt for captioners that take one (e.g. BLIP's `a picture of`).")
@click.option("-O", "--captioner-option", "captioner_options", multiple=True, metavar="[NAME.]KEY=VALUE",
              help="Keyword option for captioners (e.g. coca.decoding=top-p, num_beams=5); repeatable.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader workers preprocessing images [default: auto: 0 on CPU, up to 8 on CUDA].")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to post-process with.")
@plugin_options
def caption(images_dir: Path, captioners: tuple[str, ...], models: tuple[str, ...], output: str, batch_size: int,
            resume: bool, overwrite: bool, vote: str, keep_candidates: bool, device: str, dtype: str,
            clip_model: str | None, template: bool, prompt: str | None, captioner_options: tuple[str, ...],
            workers: int | None, config: Path | None, plugin_flags: tuple[str, ...],
            require_plugins: tuple[str, ...]) -> None:
    """Caption IMAGES_DIR, post-process the captions with the lint config, write them, lint them.

    \b
    Examples:
      lorakit caption data/ --captioner csv --model old/metadata.csv
      lorakit caption data/ --captioner csv --output sidecars --resume
      lorakit caption data/ --captioner blip --captioner coca --vote clip --keep-candidates
      lorakit caption data/ --captioner blip2 --template
      accelerate launch -m lora_core.cli caption data/ --captioner blip2    # one shard per process
    """
    from lora_core.captioning import CaptionOptions, caption_folder, parse_captioner_options

    # One progress bar (ours): the hub's download bars and transformers' loading bars stay quiet.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from lora_core.reporters.concise import render_concise

    registry = build_registry(plugin_flags, require_plugins)
    model_map = {}
    for value in models:
        name, _, model = value.rpartition("=") if "=" in value else ("*", "", value)
        model_map[name] = model
    lint_options = api.LintOptions(config=config)
    settings = api.load_config(images_dir, lint_options, registry)
    options = CaptionOptions(
        captioners=list(captioners), output=output, models=model_map, batch_size=batch_size, resume=resume,
        overwrite=overwrite, vote=vote, keep_candidates=keep_candidates, device=device, dtype=dtype, prompt=prompt,
        caption_extension=api.dataset_settings(settings, lint_options).caption_extension,
        clip_model=clip_model, template=template, workers=workers,
        captioner_options=parse_captioner_options(captioner_options),
    )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("captioning"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} images/s"), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("caption", total=None, rate="-")
        started = bar.get_time()

        def progress(done: int, total: int) -> None:
            elapsed = max(bar.get_time() - started, 1e-6)
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:.1f}")

        result = caption_folder(images_dir, options, settings, registry, progress)
    if not result.main_process:
        return  # a distributed run: the first process merges, reports and lints
    click.echo(f"lorakit: captioned {result.written} images ({result.skipped} kept) into {result.output}", err=True)
    target = images_dir if options.output == "sidecars" else result.output
    lint_result = api.lint(target, options=lint_options, registry=registry)
    render_concise(Report(lint_result), sys.stdout)
    click.get_current_context().exit(lint_result.exit_code())

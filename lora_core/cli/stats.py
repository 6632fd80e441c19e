"""`lorakit stats DATASET`: tags, caption lengths, trigger and identity coverage, image sizes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path), default=Path("."))
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--plot", "plot_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Also write PNG charts (tags, caption length, aspect ratio) into this folder.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="How many tags and words.")
@click.option("--no-images", is_flag=True, help="Skip the image headers (captions only).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to use.")
@plugin_options
def stats(dataset: Path, output_format: str, plot_dir: Path | None, top: int, no_images: bool, config: Path | None,
          plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """Describe DATASET: the numbers behind what a LoRA will learn from it."""
    from lora_core import api
    from lora_core.datasets import open_dataset
    from lora_core.stats import compute, plot

    registry = build_registry(plugin_flags, require_plugins)
    options = api.LintOptions(config=config)
    settings = api.load_config(dataset, options, registry)
    data = open_dataset(dataset, api.dataset_settings(settings, options), registry.readers)
    # Bytes that were not UTF-8 are lone surrogates in captions: shown as U+FFFD, valid output.
    result = _valid_strings(compute(data, settings, top=top, images=not no_images))
    if plot_dir is not None:
        written = plot(result, plot_dir)
        result["plots"] = [str(p) for p in written]
        # on stderr: the JSON on stdout stays one document
        click.echo(f"lorakit: wrote {len(written)} chart(s) to {plot_dir}: {', '.join(p.name for p in written)}",
                   err=True)
    if output_format == "json":
        json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    render_tables(result)


def _valid_strings(value: Any) -> Any:
    from lora_core.toolkit.captions import valid_text

    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {_valid_strings(k): _valid_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_strings(v) for v in value]
    return value


def render_tables(result: dict, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape  # captions contain brackets: "[style: x]" is not markup
    from rich.table import Table

    console = console or Console()
    length = result["length"]
    summary = Table(title=escape(result["dataset"]), show_header=False)
    summary.add_row("records", str(result["records"]))
    summary.add_row("captions", f"{result['captions']} ({result['empty_captions']} empty or missing)")
    summary.add_row("distinct tags", str(result["distinct_tags"]))
    summary.add_row(f"caption length ({length['unit']})", f"mean {length['mean']}, max {length['max']}"
                    + (f", {length['over_75']} over 75" if length["over_75"] is not None else ""))
    if result["trigger"]:
        trigger = result["trigger"]
        summary.add_row(escape(f"trigger {trigger['token']!r}"), f"{trigger['captions']} captions "
                        f"({trigger['coverage']:.0%})")
    for name, count in result["identities"].items():
        summary.add_row(escape(f"identity {name}"), f"{count} captions")
    if "images" in result:
        images = result["images"]
        side = images["shorter_side"]
        summary.add_row("images", f"{images['count']} ({images.get('uncaptioned', 0)} without a caption, "
                        f"{images['unreadable']} unreadable); shorter side "
                        f"{side['min']}-{side['max']} (median {side['median']})")
    console.print(summary)
    concepts = result.get("concepts")
    if concepts:
        folders = Table("folder", "images", "repeats", "samples / epoch", "share",
                        title=f"kohya folders ({concepts['samples_per_epoch']} samples per epoch)")
        for item in concepts["folders"]:
            folders.add_row(escape(item["folder"]), str(item["images"]), str(item["repeats"]), str(item["samples"]),
                            f"{item['share']:.0%}")
        console.print(folders)
    tags = Table("tag", "count", title="Most frequent tags")
    for item in result["tags"]:
        tags.add_row(escape(item["tag"]), str(item["count"]))
    console.print(tags)
    histogram = Table("length", "captions", title=f"Caption length ({length['unit']})")
    for label, count in zip(length["histogram"]["labels"], length["histogram"]["counts"]):
        if count:
            histogram.add_row(label, str(count))
    console.print(histogram)
    if "images" in result and result["images"]["sizes"]:
        sizes = Table("size", "images", title="Image sizes")
        for item in result["images"]["sizes"]:
            sizes.add_row(item["size"], str(item["count"]))
        console.print(sizes)

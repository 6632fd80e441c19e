"""`lorakit export --to kohya DATASET -o dataset_config.toml`: the trainer's own dataset config."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path), default=Path("."))
@click.option("--to", "target", type=click.Choice(["kohya", "ai-toolkit"]), required=True,
              help="The trainer whose dataset config to write.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write here (default: standard output).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to use.")
@plugin_options
def export(dataset: Path, target: str, output: Path | None, config: Path | None, plugin_flags: tuple[str, ...],
           require_plugins: tuple[str, ...]) -> None:
    """Write DATASET's description in a trainer's own format (kohya sd-scripts' dataset_config.toml,
    or an ai-toolkit job config's datasets), so that what lint checked is what the trainer trains."""
    from lora_core import api
    from lora_core.atomic import atomic_write_text
    from lora_core.datasets import open_dataset
    from lora_core.export import aitoolkit_datasets, kohya_dataset_config

    registry = build_registry(plugin_flags, require_plugins)
    options = api.LintOptions(config=config)
    settings = api.load_config(dataset, options, registry)
    data = open_dataset(dataset, api.dataset_settings(settings, options), registry.readers)
    api.apply_dataset_settings(settings, data)
    entities = settings.section("entities")
    triggers = dict(entities.get("concept-triggers", {}) or {})
    if entities.get("trigger"):
        triggers[""] = str(entities["trigger"])
    elif not triggers:  # nothing configured: the captions' own trigger, when inference is confident
        from lora_core.starter import propose

        conventions = propose(data, lexicon=registry.lexicon).conventions
        for found in (conventions.triggers.values() if conventions else ()):
            triggers[found.scope.concept or ""] = found.token
    text = (kohya_dataset_config if target == "kohya" else aitoolkit_datasets)(data, settings, triggers)
    if output is None:
        sys.stdout.write(text)
        return
    api.refuse_overwriting_inputs(output, data, settings.path)
    atomic_write_text(output, text)
    click.echo(f"wrote {output}: check it with `lorakit lint {output}`", err=True)

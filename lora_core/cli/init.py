"""`lorakit init DATASET`: write a starter lorakit.toml inferred from the captions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lora_core import api
from lora_core.atomic import atomic_write_text
from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options
from lora_core.config import CONFIG_FILENAME, resolve_config, tomllib
from lora_core.datasets import open_dataset
from lora_core.errors import DatasetError
from lora_core.starter import propose, render


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path), default=Path("."))
@click.option("--stdout", "to_stdout", is_flag=True, help="Print the proposal instead of writing lorakit.toml.")
@click.option("--force", is_flag=True, help="Overwrite an existing lorakit.toml.")
@plugin_options
def init(dataset: Path, to_stdout: bool, force: bool, plugin_flags: tuple[str, ...],
         require_plugins: tuple[str, ...]) -> None:
    """Propose a lorakit.toml for DATASET: trigger, style terms, identities, with comments.

    The file is written next to the dataset (the folder of metadata.csv / metadata.jsonl, or the
    sidecar folder). Review it: every value is a guess from the captions.
    """
    registry = build_registry(plugin_flags, require_plugins)
    options = api.LintOptions(isolated=True)
    settings = api.dataset_settings(api.load_config(dataset, options, registry), options)
    data = open_dataset(dataset, settings, registry.readers)
    text = render(propose(data, lexicon=registry.lexicon), data.root.resolve().name)
    # The proposal must itself be a valid config for the installed plugins.
    resolve_config(tomllib.loads(text), registry.config_sections)
    if to_stdout:
        sys.stdout.write(text)
        return
    target = data.root / CONFIG_FILENAME
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to overwrite it, or --stdout to compare")
    try:
        atomic_write_text(target, text)
    except OSError as exc:  # a read-only dataset folder, a full disk: one line, exit 2
        raise DatasetError(f"{target}: cannot write it ({exc.strerror or exc}); use --stdout to see the "
                           "proposal") from None
    click.echo(f"wrote {target}: review it, then run `lorakit lint {dataset}`", err=True)

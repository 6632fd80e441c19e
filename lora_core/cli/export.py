"""`lorakit export --to kohya DATASET -o dataset_config.toml`: the trainer's own dataset config."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options


@cli.command()
@click.argument("dataset", type=click.Path(path_type=Path), default=Path("."))
@click.option("--to", "target", type=click.Choice(["kohya", "ai-toolkit", "sidecars"]), required=True,
              help="The trainer whose dataset config to write, or `sidecars`: each caption as a file beside its "
                   "image (what kohya, ai-toolkit and OneTrainer read).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write here (default: standard output). Not for --to sidecars (they go beside the images).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), help="lorakit.toml to use.")
@click.option("--overwrite", is_flag=True, help="--to sidecars: replace existing sidecar files with other text.")
@plugin_options
def export(dataset: Path, target: str, output: Path | None, config: Path | None, overwrite: bool,
           plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """Write DATASET's description in a trainer's own format (kohya sd-scripts' dataset_config.toml,
    or an ai-toolkit job config's datasets), so that what lint checked is what the trainer trains;
    or write a metadata.csv / .jsonl dataset's captions as sidecar files beside the images.

    \b
    Examples:
      lorakit export --to sidecars data/metadata.csv     # data/img.png -> data/img.txt
      lorakit export --to kohya data/ -o dataset_config.toml"""
    from lora_core import api
    from lora_core.atomic import atomic_write_text
    from lora_core.datasets import open_dataset
    from lora_core.export import aitoolkit_datasets, kohya_dataset_config

    registry = build_registry(plugin_flags, require_plugins)
    options = api.LintOptions(config=config)
    settings = api.load_config(dataset, options, registry)
    data = open_dataset(dataset, api.dataset_settings(settings, options), registry.readers)
    api.apply_dataset_settings(settings, data)
    if target == "sidecars":
        _export_sidecars(data, settings, output, overwrite)
        return
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


def _export_sidecars(data: object, settings: object, output: Path | None, overwrite: bool) -> None:
    from lora_core.atomic import atomic_write_bytes, write_error
    from lora_core.errors import ConfigError
    from lora_core.export import sidecar_plan
    from lora_core.reporters import plural

    if output is not None:
        raise ConfigError("--to sidecars writes each caption beside its image: -o does not apply")
    extension = str(settings.section("dataset").get("caption-extension", ".txt") or ".txt")  # type: ignore[attr-defined]
    plan = sidecar_plan(data, extension if extension.startswith(".") else "." + extension,  # type: ignore[arg-type]
                        overwrite)
    for path, content in plan.writes.items():
        try:
            atomic_write_bytes(path, content)
        except OSError as exc:
            raise write_error(path, exc, "the caption file") from None
    notes = [f"{plan.unchanged} unchanged"] if plan.unchanged else []
    if plan.uncaptioned:
        notes.append(f"{plural(len(plan.uncaptioned), 'image')} without a caption got no file (e.g. "
                     f"`{plan.uncaptioned[0]}`)")
    if plan.missing:
        notes.append(f"{plural(len(plan.missing), 'row')} naming a missing image skipped (e.g. `{plan.missing[0]}`)")
    root = data.root  # type: ignore[attr-defined]
    click.echo(f"lorakit: wrote {plural(len(plan.writes), 'caption file')} ({extension})"
               + (f"; {'; '.join(notes)}" if notes else "") + ". To lint what the trainer reads, move "
               f"{getattr(data, 'path', root).name} out of {root}, then `lorakit lint {root}`", err=True)

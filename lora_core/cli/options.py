"""Options shared by several commands (plugin control) and the helpers behind them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lora_core.plugins import Registry, load_plugins


def plugin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`-p no:NAME` (skip a plugin) and `--require-plugin NAME` (exit 2 unless it loads)."""
    func = click.option(
        "--require-plugin", "require_plugins", multiple=True, metavar="NAME",
        help="Fail with exit code 2 unless this plugin loads (repeatable).",
    )(func)
    func = click.option(
        "-p", "plugin_flags", multiple=True, metavar="no:NAME",
        help="Disable a plugin, e.g. `-p no:hygiene` (repeatable; also LORAKIT_DISABLE_PLUGINS=a,b).",
    )(func)
    return func


def disabled_plugins(flags: tuple[str, ...]) -> list[str]:
    names = []
    for flag in flags:
        if not flag.startswith("no:") or len(flag) == 3:
            raise click.BadParameter(f"expected `no:NAME`, got {flag!r}", param_hint="-p")
        names.append(flag[3:])
    return names


def build_registry(plugin_flags: tuple[str, ...], require: tuple[str, ...] = ()) -> Registry:
    registry = load_plugins(disabled=disabled_plugins(plugin_flags))
    for info in registry.failed:
        click.echo(f"lorakit: warning: plugin {info.name!r} failed to load: {info.error}", err=True)
    registry.require(require)
    return registry


def split_codes(values: tuple[str, ...]) -> list[str]:
    """`--select LK1,LK2 --select LK3` -> ["LK1", "LK2", "LK3"]."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def wide_console() -> Any:
    """A rich Console for the listing commands' tables: the terminal's width on a terminal; piped
    or redirected, as wide as the rows (rich would squeeze them into 80 columns)."""
    import sys

    from rich.console import Console

    if sys.stdout.isatty():
        return Console(soft_wrap=False)
    return Console(soft_wrap=False, width=400)

"""`lorakit rules`, `lorakit rule CODE` and `lorakit plugins`: what is installed and what it means."""

from __future__ import annotations

import json
import sys

import click

from lora_core.cli import cli
from lora_core.cli.options import build_registry, plugin_options, wide_console
from lora_core.plugins import Registered


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True)
@plugin_options
def rules(output_format: str, plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """List every rule the installed plugins provide."""
    registry = build_registry(plugin_flags, require_plugins)
    all_rules = [registry.rules[c] for c in sorted(registry.rules)]
    if output_format == "json":
        json.dump([r.metadata() for r in all_rules], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    if output_format == "markdown":
        from lora_core.docgen import rules_markdown

        sys.stdout.write(rules_markdown(all_rules))
        return
    from rich.markup import escape  # summaries hold `[section]` names, not markup
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("code", "name", "severity", "fix", "plugin"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary")
    for rule in all_rules:
        table.add_row(rule.code, rule.name, rule.severity.value + (" (opt-in)" if rule.opt_in else ""),
                      rule.fix.value if rule.fix else "", rule.plugin, escape(rule.summary))
    wide_console().print(table)


@cli.command()
@click.argument("code")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
@plugin_options
def rule(code: str, output_format: str, plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """Explain one rule: what it does, why it matters, example, fix, options."""
    registry = build_registry(plugin_flags, require_plugins)
    found = registry.rule(code)
    if found is None:
        import difflib

        close = difflib.get_close_matches(code.upper(), list(registry.rules), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `lorakit rules`)"
        raise click.BadParameter(f"no rule {code!r}{hint}", param_hint="CODE")
    if output_format == "json":
        json.dump(found.metadata(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    from lora_core.docgen import rule_markdown

    text = rule_markdown(found)
    if output_format == "markdown":
        sys.stdout.write(text)
        return
    from rich.console import Console
    from rich.markdown import Markdown

    Console().print(Markdown(text))


@cli.command()
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@plugin_options
def plugins(output_format: str, plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...]) -> None:
    """List installed plugins: version, what each registers, and load errors."""
    from lora_core.plugins import missing_requirements

    registry = build_registry(plugin_flags, require_plugins)
    infos = sorted(registry.plugins.values(), key=lambda p: (not p.builtin, p.name))
    needs: dict[str, tuple[list[str], str]] = {}  # plugin -> (missing modules, install command)
    for info in infos:
        plugin = registry.pm.get_plugin(info.name) if registry.pm is not None and info.status == "loaded" else None
        missing = missing_requirements(plugin) if plugin is not None else []
        if missing:
            needs[info.name] = (missing, str(getattr(plugin, "INSTALL", "") or ""))
    if output_format == "json":
        listing = []
        for info in infos:
            item = info.as_json()
            # added fields: modules a loaded plugin needs but cannot find, and the command that installs them
            missing, install = needs.get(info.name, ([], ""))
            item["missing"], item["install"] = missing, install or None
            # what lorakit reads of each captioner and trainer (added fields; "registers" is unchanged)
            item["captioners"] = [_factory_json(c) for c in registry.captioners.values() if c.plugin == info.name]
            item["trainers"] = [_factory_json(t) for t in registry.trainers.values() if t.plugin == info.name]
            listing.append(item)
        json.dump(listing, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold")
    for column in ("name", "distribution", "version", "registers", "status"):
        table.add_column(column)
    for info in infos:
        registers = "; ".join(f"{kind}: {', '.join(items)}" for kind, items in info.registered.items())
        status = Text(info.status, style="red" if info.error else "green")
        if info.error:
            status.append(f": {info.error}")
        elif info.name in needs:
            missing, install = needs[info.name]
            status = Text(f"needs {', '.join(missing)}", style="yellow")
            if install:
                status.append(f": {install}")
        name = info.name + (" (built-in)" if info.builtin else "")
        table.add_row(name, info.distribution or "-", info.version or "-", Text(registers or "-"), status)
    console = wide_console()
    console.print(table)
    if registry.captioners:
        captioners = Table(box=None, header_style="bold", title="captioners", title_justify="left")
        for column in ("name", "plugin", "default model", "--prompt", "--template", "description"):
            captioners.add_column(column)
        for entry in sorted(registry.captioners.values(), key=lambda c: c.name):
            captioners.add_row(entry.name, entry.plugin, entry.default_model or "-",
                               "yes" if entry.takes_prompt else "-", "yes" if entry.answers_questions else "-",
                               Text(entry.description or "-"))
        console.print()
        console.print(captioners)


def _factory_json(entry: Registered) -> dict[str, object]:
    return {"name": entry.name, "description": entry.description, "default_model": entry.default_model,
            "takes_prompt": entry.takes_prompt, "answers_questions": entry.answers_questions}

"""`lorakit lint`: report, fix or diff caption problems."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from lora_core import api
from lora_core.atomic import atomic_write_text, write_error
from lora_core.cli import EXIT_FAILURE, EXIT_OK, EXIT_VIOLATIONS, cli, process_ends_with_command, skip_teardown
from lora_core.cli.options import build_registry, plugin_options, split_codes
from lora_core.datasets import by_priority
from lora_core.fixer import MAX_ROUNDS
from lora_core.reporters import Report, fixed_summary, fixes_by_rule, plural
from lora_core.reporters.machine import render_github
from lora_core.toolkit.captions import valid_text

HUMAN_FORMATS = ("full", "concise")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "--output-format", "output_format", default="full", show_default=True, metavar="NAME",
              help="full, concise, json, sarif, github, html (plugins may add more).")
@click.option("-o", "--output-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report to a file (atomically) instead of stdout.")
@click.option("--fix", "apply_fix", is_flag=True, help="Apply safe fixes in place.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff, also apply fixes that change wording.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing (exit 1 if any).")
@click.option("--select", multiple=True, metavar="CODES",
              help="Replace [lint] select (comma-separated codes, prefixes, names).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Add to the selection.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Disable these codes, prefixes or names.")
@click.option("--statistics", is_flag=True, help="Show the count of violations per rule instead of each one.")
@click.option("-q", "--quiet", is_flag=True, help="Print the violations only: no summary lines, no notes.")
@click.option("--show-fixes", is_flag=True, help="With --fix or --diff, list the problems fixed, per rule.")
@click.option("--show-settings", is_flag=True,
              help="Show the settings each dataset is linted with (config file, model, caption form, the inferred "
                   "trigger / style / wording and where each comes from), and lint nothing.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the image cache (.lorakit_cache).")
@click.option("--watch", is_flag=True, help="Lint again whenever a file of the datasets changes (Ctrl-C stops).")
@click.option("--strict", is_flag=True, help="Warnings fail the lint too (exit 1).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when violations are found.")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False),
              help="Use this lorakit.toml / pyproject.toml instead of searching upwards from the dataset.")
@click.option("--isolated", is_flag=True, help="Ignore all configuration files (conventions are still inferred).")
@click.option("--no-infer", is_flag=True,
              help="Infer nothing from the dataset (trigger, style, concepts): check only what the config says.")
@click.option("--caption-column", metavar="NAME", help="CSV column / JSONL key with captions (default: text).")
@click.option("--caption-extension", metavar="EXT", help="Extension of caption sidecars (default: .txt).")
@click.option("--color/--no-color", default=None, help="Force or disable colour (default: only on a terminal).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes for the rules (default: 2 for datasets of 20,000+ captions on Linux).")
@click.option("--semantic", is_flag=True,
              help="Also run the CLIP caption/image agreement rules (LK8xx; needs `lorakit[clip]`).")
@click.option("--clip-model", metavar="ID_OR_PATH",
              help="CLIP model for --semantic (default openai/clip-vit-large-patch14; implies --semantic).")
@plugin_options
def lint(**options: Any) -> None:
    """Lint datasets: metadata.csv, metadata.jsonl, caption sidecars, or folders of them.

    \b
    Examples:
      lorakit lint data/metadata.csv
      lorakit lint data/ --fix
      lorakit lint data/ --format sarif -o lorakit.sarif
    """
    # A lint allocates many small objects and frees them all at exit: the cyclic collector's
    # full passes over them cost about 15% of the run time and reclaim nothing. Both settings are
    # restored when the command ends, unless the process exits right away (a Python caller, or
    # CliRunner in a test suite, goes on with its usual collector and allocator).
    from lora_core.progress import show_on_terminal

    # Progress (reading images) on a terminal only, on stderr, for a report meant for people.
    shown = options["output_format"] in HUMAN_FORMATS and not options["quiet"] and sys.stderr.isatty()
    with lint_process_tuning(), show_on_terminal(shown):
        _lint(**options)


def _lint(
    paths: tuple[Path, ...], output_format: str, output_file: Path | None, apply_fix: bool, unsafe_fixes: bool,
    diff: bool, select: tuple[str, ...], extend_select: tuple[str, ...], ignore: tuple[str, ...],
    statistics: bool, quiet: bool, show_fixes: bool, show_settings: bool, no_cache: bool, watch: bool,
    strict: bool, exit_zero: bool, config: Path | None, isolated: bool, no_infer: bool,
    caption_column: str | None, caption_extension: str | None, color: bool | None, jobs: int | None,
    semantic: bool, clip_model: str | None, plugin_flags: tuple[str, ...], require_plugins: tuple[str, ...],
) -> None:
    registry = build_registry(plugin_flags, require_plugins)
    if output_format not in registry.formats:
        raise click.BadParameter(
            f"unknown format {output_format!r}; available: {', '.join(sorted(registry.formats))}",
            param_hint="--format",
        )
    options = api.LintOptions(
        select=split_codes(select) or None, extend_select=split_codes(extend_select), ignore=split_codes(ignore),
        config=config, isolated=isolated, caption_column=caption_column, caption_extension=caption_extension,
        require_plugins=list(require_plugins), jobs=jobs, semantic=semantic, clip_model=clip_model,
        infer=not no_infer, cache=not no_cache,
    )
    targets = list(paths) or [Path(".")]
    ctx = click.get_current_context()
    if show_settings:
        click.echo(settings_text(targets, options, registry), nl=False)
        ctx.exit(EXIT_OK)
    if watch:
        from lora_core.cli.watch import watch_and_lint

        watch_and_lint(targets, ctx)
        return
    readers = by_priority(registry.readers)
    for target in targets:
        held = api.separate_datasets(target, readers) if target.is_dir() else None
        if held and not quiet:
            names = ", ".join(f"`{sub.name}/`" for sub in held)
            click.echo(f"lorakit: note: {target} holds {len(held)} datasets ({names}): each is linted on its own",
                       err=True)

    if diff:
        would = api.fix(targets, unsafe=unsafe_fixes, write=False, options=options, registry=registry)
        text = would.diff()
        click.echo(text, nl=False)
        click.echo(f"Would fix {fixed_summary(would)}" + (":" if show_fixes else ".") if would.changes
                   else "No fixes available.", err=True)
        if show_fixes and would.changes:
            click.echo("\n".join(fixes_by_rule(would.by_code, would.remaining.rules)), err=True)
        if would.remaining.crashes:
            _print_crashes(would.remaining)
            ctx.exit(EXIT_FAILURE)
        ctx.exit(EXIT_VIOLATIONS if would.changes else EXIT_OK)

    fixed: api.FixResult | None = None
    if apply_fix:
        fixed = api.fix(targets, unsafe=unsafe_fixes, write=True, options=options, registry=registry)
        result = fixed.remaining
        for note in fixed.invalid:
            click.echo(f"lorakit: warning: {note}", err=True)
        if not fixed.converged:
            codes = ", ".join(fixed.unsettled) or "?"
            click.echo(f"lorakit: error: fixes did not settle after {MAX_ROUNDS} rounds ({codes} kept changing "
                       f"the captions): nothing was written; report it to {_owners(fixed.unsettled, registry)}",
                       err=True)
            ctx.exit(EXIT_FAILURE)
    else:
        result = api.lint(targets, options=options, registry=registry)

    for skipped in [] if quiet else result.skipped:
        click.echo(f"lorakit: note: skipped {skipped}: not a caption sidecar, image or config of a dataset", err=True)
    for item in [] if quiet else result.datasets:
        for name in item.config.ignored:
            click.echo(f"lorakit: note: {item.config.path}: [{name}] not checked: no loaded plugin provides it "
                       f"(disabled: {', '.join(registry.disabled)})", err=True)

    # The report is rendered into a buffer, which is no terminal: colour and width are decided
    # here, against where the text really goes.
    terminal = output_file is None and output_format in HUMAN_FORMATS and sys.stdout.isatty()
    if color is None and output_file is None:
        from lora_core.reporters.full import use_color  # rich: not for `--help`

        color = use_color(Report(result), sys.stdout)
    report = Report(result, cwd=Path.cwd(), fixed=fixed, unsafe_fixes=unsafe_fixes, statistics=statistics,
                    color=bool(color) if output_format in HUMAN_FORMATS else color,
                    width=shutil.get_terminal_size().columns if terminal else None, quiet=quiet,
                    show_fixes=show_fixes)
    render = registry.formats[output_format].render
    buffer = io.StringIO()
    render(report, buffer)
    # A byte that was not UTF-8 (LK004 reports it) is kept in captions as a lone surrogate; a
    # report is text for people and parsers: it shows U+FFFD there, and is always valid UTF-8.
    text = valid_text(buffer.getvalue())
    if output_file is not None:
        _refuse_overwriting_inputs(output_file, result)
        try:
            atomic_write_text(output_file, text)
        except OSError as exc:
            raise write_error(output_file, exc, f"the {output_format} report") from None
        click.echo(f"lorakit: wrote {output_format} report to {output_file} "
                   f"({plural(len(result), 'problem')})", err=True)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if os.environ.get("GITHUB_ACTIONS") == "true" and output_format in HUMAN_FORMATS:
        render_github(report, sys.stdout)
    if output_format not in HUMAN_FORMATS or output_file is not None:
        _print_crashes(result)
    skip_teardown()
    ctx.exit(result.exit_code(strict=strict, exit_zero=exit_zero))


def settings_text(targets: list[Path], options: api.LintOptions, registry: Any) -> str:
    """What `--show-settings` prints: per dataset, the config file, the rule selection, the model,
    the caption form, and the trigger, style and wording, each pinned (and where) or inferred (and
    from what), the way the rules will see them."""
    from collections import Counter

    from lora_core.starter import propose
    from lora_core.toolkit.models import model_named

    lines: list[str] = []
    dataset_targets, _ = api.dataset_targets(targets, registry.readers)
    for target in dataset_targets:
        dataset, config, rules, selection = api.prepare_dataset(target, options, registry)
        where = str(config.path) if config.path else "no config file (defaults; `lorakit init` writes one)"
        lines.append(f"{dataset.path} ({dataset.format}, {plural(len(dataset.records), 'caption')})")
        lines.append(f"  config file   {where}")
        lines.append(f"  rules         {len(rules)} selected (select = {list(selection.select)}, ignore = "
                     f"{list(selection.ignore)}; from {selection.origin})")
        infer = config.section("infer")
        proposal = (propose(dataset, {k: v for k, v in infer.items() if k != "enabled"}, config.lexicon)
                    if infer.get("enabled", True) else None)
        model_key = str(config.section("dataset").get("model", "") or "")
        model = model_named(model_key) if model_key else None
        source = ("[dataset] model" + (f" in {config.path}" if "dataset.model" in config.present and config.path
                                       else " (the trainer config)")) if model_key else ""
        lines.append(f"  model         {model.name if model else model_key} ({source})" if model_key else
                     "  model         unknown: tag captions are checked against CLIP's 75 tokens; pin it with "
                     "[dataset] model")
        if proposal is not None:
            forms = Counter(f for f in proposal.forms if f)
            shown = ", ".join(f"{form} {count}" for form, count in forms.most_common()) or "none classified"
            lines.append(f"  caption form  {shown} (per caption; a set's form decides which checks apply)")
        entities, style = config.section("entities"), config.section("style")
        conventions = proposal.conventions if proposal is not None else None
        if "entities.trigger" in config.present:
            lines.append(f"  trigger       `{entities.get('trigger')}` (pinned: [entities] trigger in {config.path})")
        elif conventions is not None and conventions.triggers:
            for trigger in conventions.triggers.values():
                lines.append(f"  trigger       {trigger.evidence}")
        else:
            lines.append("  trigger       none (not pinned, none inferred)")
        if "style.required" in config.present:
            lines.append(f"  style         {style.get('required')} (pinned: [style] required in {config.path})")
        elif conventions is not None and any(conventions.styles.values()):
            for found in conventions.styles.values():
                lines += [f"  style         {item.evidence}" for item in found]
        else:
            lines.append("  style         none (not pinned, none inferred)")
        if "style.vague" in config.present:
            lines.append(f"  wording       {style.get('vague')} (pinned: [style] vague in {config.path})")
        elif conventions is not None:
            lines += [f"  wording       {hint.evidence}" for hints in conventions.subjects.values() for hint in hints]
        if proposal is None:
            lines.append("  inference     off ([infer] enabled = false or --no-infer): only the config is checked")
        lines.append("")
    return "\n".join(lines)


def _owners(codes: list[str], registry: Any) -> str:
    """Who to tell about rules whose fixes never settle: lorakit for its own rules, else the plugins."""
    plugins = sorted({registry.rules[code].plugin for code in codes if code in registry.rules})
    third_party = [name for name in plugins if not getattr(registry.plugins.get(name), "builtin", True)]
    if not third_party:
        return "lorakit (these are its own rules)"
    return "the plugin" + ("s " if len(third_party) > 1 else " ") + ", ".join(repr(p) for p in third_party)


def _refuse_overwriting_inputs(output_file: Path, result: api.LintResult) -> None:
    """`-o metadata.csv` would replace the dataset with its own report: refused, as is any file
    the lint read or the dataset holds (a caption file, an image, uncaptioned too, the config)."""
    for item in result.datasets:
        api.refuse_overwriting_inputs(output_file, item.dataset, item.config.path)


@contextlib.contextmanager
def lint_process_tuning() -> Iterator[None]:
    """No cyclic garbage collection, and glibc keeping freed memory for reuse, while a lint runs.

    By default glibc hands every large block (the corpus-sized strings and lists each rule builds
    and drops) back to the system when freed, and the next rule's block faults in again page by
    page: a quarter of a big lint's system time. Both settings are restored afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    # blocks up to 256 MB come from the heap, which is not trimmed back below 1 GB
    tuned = _set_malloc_thresholds(mmap=256 << 20, trim=1 << 30)
    try:
        yield
    finally:
        # Not when the process ends right away (`lorakit lint` from a shell): lowering the trim
        # threshold again would hand the heap back page by page just before exit frees it whole.
        if not process_ends_with_command():
            if tuned:
                _set_malloc_thresholds(mmap=_GLIBC_DEFAULT_THRESHOLD, trim=_GLIBC_DEFAULT_THRESHOLD)
            if collecting:
                gc.enable()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # both thresholds' documented default (mallopt(3))


def _set_malloc_thresholds(mmap: int, trim: int) -> bool:
    """glibc's mmap and trim thresholds (mallopt); False where there is no glibc to ask."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): keep its defaults
        return False
    mallopt(_M_MMAP_THRESHOLD, mmap)
    mallopt(_M_TRIM_THRESHOLD, trim)
    return True


def _print_crashes(result: api.LintResult) -> None:
    for crash in result.crashes:
        click.echo(f"lorakit: error: {crash.describe()}", err=True)

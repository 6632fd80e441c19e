"""The `lorakit` command line: a thin click layer over lora_core's API.

Exit codes (a public contract, see docs/cli.md):
    0  no error-severity violations (warnings allowed unless --strict)
    1  at least one error (or warning with --strict); with --diff: fixes would change files
    2  usage, config, dataset or plugin failure, or a rule crashed
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from lora_core import __version__
from lora_core.errors import LorakitError

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_FAILURE = 2


class LorakitGroup(click.Group):
    """lorakit's own commands plus those plugins contribute (the `register_commands` hook), and
    lorakit's user-facing exceptions turned into one clean line and exit code 2.

    Plugin commands are looked up only for a name that is not one of lorakit's own (and for
    `--help`), so `lorakit lint` never loads the plugin system twice."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            found = _plugin_commands().get(cmd_name)
            command = _guarded(found.command, found.plugin) if found is not None else None
        return command

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """click's own handling, except that a usage error is one line like every other exit-2
        error (`lorakit: error: ...`), instead of click's three-line "Usage: ... Error: ..."."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `lorakit` alone: the help, as click shows it
                exc.show()
                sys.exit(exc.exit_code)
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            click.echo(f"lorakit: error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"lorakit: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("lorakit: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LorakitError as exc:
            click.echo(f"lorakit: error: {exc}", err=True)
            ctx.exit(EXIT_FAILURE)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BrokenPipeError:
            # The reader went away (`lorakit lint | head`): stop quietly, like other Unix tools.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_VIOLATIONS)
        except KeyboardInterrupt:
            click.echo("lorakit: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("LORAKIT_DEBUG"):
                raise
            click.echo(
                f"lorakit: internal error: {type(exc).__name__}: {exc}\n"
                "Please report it with the output of `LORAKIT_DEBUG=1 lorakit ...`.",
                err=True,
            )
            ctx.exit(EXIT_FAILURE)


@click.group(cls=LorakitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="lorakit")
def cli() -> None:
    """Lint, fix, caption and train LoRA datasets: captions are the only supervision, treat them like code.

    \b
    Start with:  lorakit lint path/to/metadata.csv
    Rules:       lorakit rules, lorakit rule LK101
    Plugins:     lorakit plugins
    """


_skip_teardown = False
_in_main = False  # True while `main` runs the command line (not a CliRunner or another caller)
_commands_of_plugins: dict[str, Any] | None = None


def _plugin_commands() -> dict[str, Any]:
    """Commands the installed plugins contribute (honouring LORAKIT_DISABLE_PLUGINS), loaded once
    per process. A broken plugin is reported by `lorakit plugins`, not here."""
    global _commands_of_plugins
    if _commands_of_plugins is None:
        from lora_core.plugins import load_plugins

        try:
            _commands_of_plugins = dict(load_plugins(hooks=("register_commands",)).commands)
        except LorakitError:  # the plugin system itself cannot load: the command that needs it says why
            _commands_of_plugins = {}
    return _commands_of_plugins


def _guarded(command: Any, plugin: str) -> Any:
    """A plugin's command whose own failure is one line naming the plugin (exit 2), as a failing
    captioner, trainer or reader is, never lorakit's "internal error, please report it"."""
    callback = command.callback
    if callback is None or getattr(callback, "__lorakit_guarded__", False):
        return command

    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (LorakitError, click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt,
                BrokenPipeError):
            raise
        except Exception as exc:
            if os.environ.get("LORAKIT_DEBUG"):
                raise
            from lora_core.errors import PluginError

            raise PluginError(f"command `{command.name}` of plugin {plugin!r} failed: {type(exc).__name__}: {exc}"
                              ) from None

    guarded.__lorakit_guarded__ = True  # type: ignore[attr-defined]
    command.callback = guarded
    return command


def skip_teardown() -> None:
    """Let `main` end the process without tearing down the interpreter: called by a command
    once everything it writes is written. Freeing a big lint's objects one by one takes longer
    than some small lints take in all; the operating system reclaims the memory at once."""
    global _skip_teardown
    _skip_teardown = True


def process_ends_with_command() -> bool:
    """True when the process ends as soon as the current command returns (`main` was asked to
    skip the teardown): process-wide settings need no restoring then."""
    return _in_main and _skip_teardown


def main() -> None:
    global _skip_teardown, _in_main
    _skip_teardown = False  # set again by the command this call runs, if it wants
    _in_main = True
    try:
        cli(prog_name="lorakit")
    except SystemExit as exc:
        if not _skip_teardown:
            raise
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):  # the reader went away: nothing left to write
            pass
        os._exit(code)
    finally:
        _in_main = False


# Subcommands register themselves on `cli`; they import nothing heavy at module level.
from lora_core.cli import caption, export, info, init, lint, review, stats, train  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main()

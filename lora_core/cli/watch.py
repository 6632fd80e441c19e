"""`lorakit lint --watch`: lint, then lint again whenever a file of the datasets changes.

Polling (once a second, file sizes and modification times) rather than inotify: it works the same
on Linux, macOS, Windows and network drives, needs no dependency, and a dataset's folder listing
is cheap next to a lint. The image cache folder is not watched (lint writes it)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click

#: Seconds between two looks at the files.
POLL_SECONDS = 1.0
#: Files looked at, at most: a larger tree is watched by its first files only (said once).
MAX_FILES = 200_000


def snapshot(targets: list[Path]) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under the targets (the target file itself, or its folder)."""
    seen: dict[str, tuple[int, int]] = {}
    for target in targets:
        root = target if target.is_dir() else target.parent
        for folder, folders, files in os.walk(root):
            folders[:] = [name for name in folders if not name.startswith(".")]
            for name in files:
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                seen[path] = (stat.st_size, stat.st_mtime_ns)
                if len(seen) >= MAX_FILES:
                    return seen
    return seen


def watch_and_lint(targets: list[Path], ctx: click.Context) -> None:
    """Run the same `lorakit lint` (without --watch) now and after every change, each run in a
    fresh process (a plugin or config edited in between is read again); Ctrl-C ends it (exit 0)."""
    arguments = [a for a in sys.argv[1:] if a != "--watch"] if _invoked_as_lorakit() else None
    if arguments is None:
        arguments = ["lint", *map(str, targets)]
    command = [sys.executable, "-m", "lora_core", *arguments]
    before = snapshot(targets)
    try:
        while True:
            click.echo(f"lorakit: watching {', '.join(map(str, targets))} (Ctrl-C stops) - "
                       f"{time.strftime('%H:%M:%S')}", err=True)
            subprocess.run(command, check=False)
            sys.stdout.flush()
            while True:
                time.sleep(POLL_SECONDS)
                now = snapshot(targets)
                if now != before:
                    changed = sorted(set(now.items()) ^ set(before.items()))
                    before = now
                    click.echo(f"\nlorakit: {changed[0][0]} changed: linting again", err=True)
                    break
    except KeyboardInterrupt:
        click.echo("", err=True)
        ctx.exit(0)


def _invoked_as_lorakit() -> bool:
    """Whether sys.argv is a `lorakit lint ...` command line (not a test runner's or an API caller's)."""
    return len(sys.argv) > 1 and "lint" in sys.argv[1:3] and Path(sys.argv[0]).name in ("lorakit", "__main__.py",
                                                                                          "-m")

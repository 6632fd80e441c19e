"""Progress of long work (reading hundreds of images), for a person watching a terminal.

The work reports through `step(what, done, total)`; nothing is shown unless a command turned a
display on (`show_on_terminal`), which `lorakit lint` does only when stderr is a terminal and the
report is for people. The line appears once the work has run for `DELAY` seconds (a quick lint
stays silent), is rewritten in place, and is erased when the work ends: machine formats, pipes
and files never see it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

#: Seconds of work before a progress line appears.
DELAY = 2.0

_display: _Line | None = None


class _Line:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started: dict[str, float] = {}
        self.shown = False
        self.last = 0.0

    def step(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        started = self.started.setdefault(what, now)
        if now - started < DELAY or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        self.stream.write(f"\r\x1b[2Klorakit: {what} {done}/{total} ({done / max(1, total):.0%})")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


def step(what: str, done: int, total: int) -> None:
    """`done` of `total` items of `what` ("reading images") are finished."""
    if _display is not None:
        _display.step(what, done, total)


@contextmanager
def show_on_terminal(enabled: bool, stream: TextIO | None = None) -> Iterator[None]:
    """Show progress lines on `stream` (stderr) while the block runs, when `enabled`."""
    global _display
    if not enabled:
        yield
        return
    _display = _Line(stream or sys.stderr)
    try:
        yield
    finally:
        _display.clear()
        _display = None

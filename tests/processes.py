"""Test helpers for lint's worker processes: see them, kill their lint, and check none outlives it
holding its stdout (Linux: /proc)."""

from __future__ import annotations

import select
import signal
import subprocess
import time
from pathlib import Path


def children_of(process: subprocess.Popen, count: int = 1, timeout: float = 60) -> list[str]:
    """The pids of `process`'s children once at least `count` are seen (fewer if it ends or `timeout` passes)."""
    children: list[str] = []
    deadline = time.monotonic() + timeout
    while len(children) < count and time.monotonic() < deadline and process.poll() is None:
        listing = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        children = listing.read_text().split() if listing.exists() else []
        time.sleep(0.01)
    return children


def kill_and_expect_no_survivor(process: subprocess.Popen, children: list[str], survivor: str) -> None:
    """kill -9 `process`: its stdout must reach EOF within 10 s (a child left behind would keep it
    open, and the select would time out instead of hanging the suite), and every child must be gone."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    ready, _, _ = select.select([process.stdout], [], [], 10)
    assert ready and process.stdout.read() == b"", f"{survivor} outlived the killed lint, holding stdout"
    for child in children:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "Z" not in _state(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"

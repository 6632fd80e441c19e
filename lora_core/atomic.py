"""Atomic file replacement: write a temp file in the same folder, fsync, rename over the original.

A crash or kill at any moment leaves either the old file or the new one, never a mix, and the
original's permission bits are kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    folder = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".lorakit-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_error(path: Path, exc: OSError, what: str) -> Exception:
    """An OutputError naming `path` for an OSError met while writing it."""
    import errno

    from lora_core.errors import OutputError

    reasons = {errno.ENOENT: "its folder does not exist", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
               errno.ENOSPC: "no space left on the device", errno.EISDIR: "it is a folder",
               errno.ENOTDIR: "a part of the path is not a folder", errno.EDQUOT: "disk quota exceeded"}
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc) or type(exc).__name__)
    return OutputError(f"{path}: cannot write {what} ({reason})")

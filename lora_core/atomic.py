"""Atomic file replacement: write a temp file in the same folder, fsync, rename over the original.

A crash or kill at any moment leaves either the old file or the new one, never a mix, and the
original's permission bits are kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "inside_folder",
    "write_error",
]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    folder = path.parent
    try:
        stat = path.stat()
        mode, owner = stat.st_mode & 0o7777, (stat.st_uid, stat.st_gid)
    except FileNotFoundError:
        mode, owner = 0o644, None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".lorakit-tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        if owner is not None and hasattr(os, "chown") and owner != (os.getuid(), os.getgid()):
            try:  # keep the file's owner and group (allowed for root, or a group the user is in)
                os.chown(tmp_name, *owner)
            except PermissionError:
                pass
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


def inside_folder(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """True when `path`, links resolved, is `folder` or lies below it (links resolved too): the
    one test of "inside the dataset" for what lorakit writes or serves."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def write_user_file(path: Path, data: bytes, root: Path) -> None:
    """Rewrite a file of the user's dataset (`--fix`), keeping what it is:
    - a symbolic link stays a link: its target is rewritten, if the target is inside `root`
      (the dataset); one that leads out of the dataset is refused, never written;
    - a read-only file (no write bit) is refused: the user made it so;
    - a hard-linked file is rewritten in place, so every link sees the fix (an atomic replace
      would give this name a new file and leave the others behind);
    - anything else is replaced atomically (owner, group and mode kept)."""
    from lora_core.errors import OutputError

    target = Path(os.path.realpath(path))
    if target != path.absolute() and not inside_folder(target, root):
        raise OutputError(f"{path}: is a symbolic link to {target}, outside the dataset: not written")
    stat = target.stat()
    if not stat.st_mode & 0o222:
        raise OutputError(f"{path}: is read-only: not written (make it writable to let --fix change it)")
    if stat.st_nlink > 1:
        with open(target, "r+b") as fh:
            fh.write(data)
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
        return
    atomic_write_bytes(target, data)

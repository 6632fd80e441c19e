"""The reader interface and the helpers every reader shares (decoding, image inventory, paths).

A reader claims a path, reads it into a Dataset, and renders changed captions back into new file
contents. Rendering returns text per file; writing it (atomically) is the core's job, so a
third-party reader never has to get atomic writes right.

Readers also take part in dataset discovery: given a file that is part of a dataset rather than
the dataset itself (a caption, an image, a lorakit.toml: what pre-commit passes one by one), a
reader's `dataset_for` names the dataset it stands for (`lora_core.api.dataset_targets`).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from lora_core.config import CONFIG_FILENAME
from lora_core.datasets.model import Dataset, ReadProblem, Record, SourceFile
from lora_core.errors import DatasetError

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "IMAGE_EXTENSIONS",
    "regularisation_parent",
    "DatasetReader",
    "DatasetSettings",
    "MetadataFileReader",
    "decode_source",
    "describe_invalid_bytes",
    "encode_source",
    "files_as_read",
    "invalid_byte_spans",
    "os_error",
    "read_bytes",
    "splice",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".avif"})
_IMAGE_SUFFIXES = tuple(IMAGE_EXTENSIONS)
_SURROGATES = re.compile("[\udc80-\udcff]+")
_LINE_ENDINGS = re.compile(r"\r\n|\r|\n")
# Pre-compiled folder-name pattern of kohya repeat folders: "10_cyberpunk city".
KOHYA_FOLDER = re.compile(r"^(\d+)_(.+)$")
_REGULARISATION_PARENT = re.compile(r"(?i)(?:^|[_\-\s])(?:reg|regs|regularization|regularisation|class)(?:$|[_\-\s])"
                                    r"|^reg_?(?:images?|imgs?|data)$|^(?:images?|imgs?)_?reg$")


def regularisation_parent(name: str) -> bool:
    """Whether a folder name is one kohya's docs give regularisation images (`reg`, `img_reg`,
    `reg_images`, `regularization`, `class_images`): its `N_class` folders hold class images."""
    return _REGULARISATION_PARENT.search(name) is not None
#: The metadata files of a Hugging Face imagefolder; a folder holds at most one of them.
IMAGEFOLDER_METADATA = ("metadata.csv", "metadata.jsonl")


@dataclass(frozen=True)
class DatasetSettings:
    """The `[dataset]` config section, resolved."""

    caption_column: str = "text"
    image_column: str = "file_name"
    caption_extension: str = ".txt"


class DatasetReader:
    """Base class for dataset readers registered through the `register_readers` hook."""

    #: Short name shown in reports and `lorakit plugins`.
    name: str = ""
    description: str = ""
    #: What a file this reader claims is, for messages ("a kohya dataset config"); default: the name.
    what: str = ""
    #: Readers are asked in descending priority; the folder-of-sidecars fallback is lowest.
    priority: int = 0

    #: Suffixes of files that only ever belong to a dataset (captions, images): such a file that no
    #: reader places in a dataset (`dataset_for`) is skipped with a note, not an error.
    member_suffixes: frozenset[str] = frozenset()

    def claims(self, path: Path) -> bool:
        """True when this reader understands `path` (a file or a folder)."""
        raise NotImplementedError

    def dataset_for(self, path: Path) -> Path | None:
        """For a file that belongs to a dataset this reader reads, without being it (a caption
        sidecar, an image, a `lorakit.toml` in the dataset's folder): the dataset's path, which
        this reader must then claim. None: not a file of such a dataset (the default).

        This is how `lorakit lint img_01.txt` (pre-commit's per-file call) lints the whole
        dataset the caption belongs to, so cross-file rules still see every caption."""
        return None

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        raise NotImplementedError

    def render(self, dataset: Dataset, file_changes: dict[Path, set[str]]) -> dict[Path, bytes]:
        """New contents of every file that changes: records whose caption differs from the
        original, plus whole-file normalisations (`file_changes[path]` holds "strip-bom",
        "normalize-newlines"). Files that do not change are left out."""
        raise NotImplementedError

    def render_without(self, dataset: Dataset, dropped: Sequence[Record]) -> dict[Path, bytes]:
        """New contents of the files that list `dropped` once those records leave the dataset
        (`DatasetSession.drop`). A metadata file loses their rows; in a sidecar dataset nothing is
        rewritten (each caption file moves away with its image): {}."""
        return {}


class MetadataFileReader(DatasetReader):
    """Base for readers of one HF imagefolder metadata file (metadata.csv, metadata.jsonl): claims
    a folder holding `filename`, or any file with the same suffix."""

    filename: str = ""
    member_suffixes = IMAGE_EXTENSIONS

    def claims(self, path: Path) -> bool:
        if path.is_dir():
            if not (path / self.filename).is_file():
                return False
            others = [name for name in IMAGEFOLDER_METADATA if name != self.filename and (path / name).is_file()]
            if others:
                raise DatasetError(f"{path}: holds both {self.filename} and {others[0]}; keep one (HF imagefolder "
                                   "refuses both), or name the file to lint")
            return True
        return path.suffix.lower() == Path(self.filename).suffix

    def dataset_for(self, path: Path) -> Path | None:
        """An image in the metadata file's folder or one below it (imagefolder's `train/`), or the
        folder's lorakit.toml, stands for the folder."""
        suffix = path.suffix.lower()
        if suffix not in IMAGE_EXTENSIONS and path.name != CONFIG_FILENAME:
            return None
        folder = path.resolve().parent
        places = (folder, folder.parent) if suffix in IMAGE_EXTENSIONS else (folder,)
        return next((place for place in places if (place / self.filename).is_file()), None)

    def row_span(self, record: Record) -> tuple[int, int]:
        """The characters of `record`'s row in its source, line break included."""
        raise NotImplementedError

    def render_without(self, dataset: Dataset, dropped: Sequence[Record]) -> dict[Path, bytes]:
        out: dict[Path, bytes] = {}
        for source in dataset.sources:
            rows = [(*self.row_span(r), "") for r in dropped if r.source is source]
            if rows:
                out[source.path] = encode_source(source, splice(source.text, rows), set())
        return out

    def open(self, path: Path, settings: DatasetSettings) -> tuple[Dataset, SourceFile, ImageResolver]:
        """Decode the metadata file: (dataset without records, source, a resolver for its image
        names). The folder is walked when something first needs the images, not here."""
        file = path / self.filename if path.is_dir() else path
        problems: list[ReadProblem] = []
        source = decode_source(file, read_bytes(file), problems)
        inventory = ImageInventory(file.parent)
        dataset = Dataset(
            root=file.parent, path=file, format=self.name, records=[], sources=[source], problems=problems,
            caption_column=settings.caption_column, reader=self, _images_on_disk=lambda: inventory.names,
        )
        return dataset, source, ImageResolver(file.parent, inventory)


# ---------------------------------------------------------------------------------------------
# Decoding


def os_error(path: Path, exc: OSError, doing: str = "read") -> DatasetError:
    """A DatasetError naming the path, for an OSError met while reading a dataset."""
    if isinstance(exc, FileNotFoundError):
        return DatasetError(f"{path}: no such file or folder")
    if isinstance(exc, PermissionError):
        return DatasetError(f"{path}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return DatasetError(f"{path}: is a directory, expected a file")
    return DatasetError(f"{path}: cannot {doing} ({exc.strerror or exc})")


def read_bytes(path: Path) -> bytes:
    """Read a file for a dataset, turning OS errors into a DatasetError naming the file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise os_error(path, exc) from None


def read_small_file(path: str) -> bytes:
    """`read_bytes` for the many small files of a sidecar dataset: a str path and two system
    calls, without building a Path or a buffered file object. O_NONBLOCK: a FIFO named like a
    caption never blocks the read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise os_error(Path(path), exc) from None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        # Nothing read: an empty file, or a FIFO with no writer. Only then is the type checked.
        if not chunks and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BlockingIOError
    except BlockingIOError:
        raise DatasetError(f"{path}: not a regular file (a pipe or device); captions must be files") from None
    except OSError as exc:
        raise os_error(Path(path), exc) from None
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


#: Below this many files a second process costs more than it saves.
PARALLEL_READ_MIN_FILES = 20_000


def read_small_files(paths: list[str]) -> list[bytes]:
    """The contents of many small files, in order. For a big batch on Linux with two CPUs (and
    no other thread running: forking a threaded process can deadlock the child), a forked
    child reads the second half while this process reads the first, and sends its half back
    through a pipe: the system calls, most of the cost, run on both cores. Whatever goes wrong
    in the child (an unreadable file, the child killed), this process reads that half itself,
    so errors are raised here, naming the file, exactly as a serial read raises them."""
    import sys
    import threading

    if (len(paths) < PARALLEL_READ_MIN_FILES or sys.platform != "linux" or (os.cpu_count() or 1) < 2
            or threading.active_count() > 1):
        return [read_small_file(p) for p in paths]
    half = len(paths) // 2
    theirs = paths[half:]
    receive, send = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child, which never returns
        status = 1
        try:
            from lora_core.engine import die_with_parent

            die_with_parent()
            os.close(receive)
            blobs = [read_small_file(p) for p in theirs]
            header = b"".join(len(b).to_bytes(4, "little") for b in blobs)
            with os.fdopen(send, "wb") as out:  # the parent reads as we write: no pipe deadlock
                out.write(header)
                for blob in blobs:
                    out.write(blob)
            status = 0
        finally:
            os._exit(status)
    os.close(send)
    try:
        mine = [read_small_file(p) for p in paths[:half]]
        with os.fdopen(receive, "rb") as incoming:
            header = incoming.read(4 * len(theirs))
            sizes = [int.from_bytes(header[i:i + 4], "little") for i in range(0, len(header), 4)]
            body = incoming.read()
    finally:
        _, status = os.waitpid(child, 0)
    if status != 0 or len(sizes) != len(theirs) or sum(sizes) != len(body):
        return mine + [read_small_file(p) for p in theirs]  # raises the clean error, if there is one
    rest, at = [], 0
    for size in sizes:
        rest.append(body[at:at + size])
        at += size
    return mine + rest


def decode_source(path: Path | str, data: bytes, problems: list[ReadProblem]) -> SourceFile:
    """Decode UTF-8 losslessly and note BOM, UTF-16 and invalid bytes as problems."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DatasetError(
            f"{path}: file is UTF-16 encoded; save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8`)"
        )
    bom = data.startswith(b"\xef\xbb\xbf")
    body = data[3:] if bom else data
    try:
        text, invalid = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, invalid = body.decode("utf-8", "surrogateescape"), True
    # a str path is kept as given (as SourceFile.plain does): a sidecar's path string is its identity
    source = SourceFile(path=cast(Path, path), text=text, bom=bom, invalid_utf8=invalid)
    if bom:
        problems.append(
            ReadProblem("bom", source.location(0), "file starts with a UTF-8 byte order mark", source=source)
        )
    _note_mixed_newlines(source, problems)
    return source


def invalid_byte_spans(text: str) -> list[tuple[int, int]]:
    """Character spans that came from bytes which are not valid UTF-8."""
    return [m.span() for m in _SURROGATES.finditer(text)]


def describe_invalid_bytes(source: SourceFile, start: int, end: int) -> str:
    raw = source.text[start:end].encode("utf-8", "surrogateescape")
    shown = " ".join(f"0x{b:02X}" for b in raw[:4])
    hint = ""
    try:
        hint = f" (as cp1252 it would read {raw.decode('cp1252')!r})"
    except UnicodeDecodeError:
        pass
    return f"byte offset {source.byte_offset(start)}: {shown} is not valid UTF-8{hint}"


def _note_mixed_newlines(source: SourceFile, problems: list[ReadProblem]) -> None:
    text = source.text
    if "\r" not in text:
        return  # only "\n" endings: the common case, decided without a scan
    counts: dict[str, int] = {}
    first_at: dict[str, int] = {}
    for match in _LINE_ENDINGS.finditer(text):
        ending = match.group()
        counts[ending] = counts.get(ending, 0) + 1
        first_at.setdefault(ending, match.start())
    if len(counts) < 2:
        return
    dominant = max(counts, key=lambda k: counts[k])
    minority = min((k for k in counts if k != dominant), key=lambda k: first_at[k])
    names = {"\r\n": "CRLF", "\n": "LF", "\r": "CR"}
    summary = ", ".join(f"{counts[k]} {names[k]}" for k in counts)
    problems.append(
        ReadProblem(
            "mixed-newlines",
            source.location(first_at[minority]),
            f"mixed line endings ({summary}); this line ends with {names[minority]}",
            source=source,
        )
    )


def dominant_newline(text: str) -> str:
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    cr = text.count("\r") - crlf
    return max((crlf, "\r\n"), (lf, "\n"), (cr, "\r"))[1] if (crlf or lf or cr) else "\n"


def encode_source(source: SourceFile, text: str, changes: set[str]) -> bytes:
    """Encode new file text the way the original was stored, applying whole-file normalisations.

    Invalid bytes read through surrogateescape are written back exactly as they were."""
    if "normalize-newlines" in changes:
        text = _LINE_ENDINGS.sub(dominant_newline(text), text)
    data = text.encode("utf-8", "surrogateescape")
    if source.bom and "strip-bom" not in changes:
        data = b"\xef\xbb\xbf" + data
    return data


def files_as_read(dataset: Dataset, paths: Iterable[Path]) -> dict[Path, bytes]:
    """The bytes of each of `paths` (files of `dataset` about to be rewritten) as they were read,
    to notice a file that changed on disk since. Sources are matched by their path string: no
    Path is built for the (many) sources not asked for."""
    wanted = {os.fspath(path): path for path in paths}
    found = {}
    for source in dataset.sources:
        path = wanted.get(source.path_str)
        if path is not None:
            found[path] = encode_source(source, source.text, set())
    return found


def splice(text: str, replacements: list[tuple[int, int, str]]) -> str:
    """Replace non-overlapping (start, end, new) spans of text; everything else stays byte-exact."""
    pieces: list[str] = []
    last = 0
    for start, end, new in sorted(replacements):
        pieces.append(text[last:start])
        pieces.append(new)
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


# ---------------------------------------------------------------------------------------------
# Images and paths


def image_inventory(root: Path, skip_dirs: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """Dataset-relative posix paths of every image file under root (hidden folders skipped), and
    the subset of them that are symbolic links (which may point out of the root).

    One pass over each folder's entries: a flat folder of 100,000 images is the common case, and
    `DirEntry` answers `is_symlink` / `is_dir` from the listing itself, without a stat call."""
    found: set[str] = set()
    links: set[str] = set()
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                for entry in listing:
                    name = entry.name
                    if name[0] == ".":
                        continue
                    if name.lower().endswith(_IMAGE_SUFFIXES):
                        found.add(prefix + name)
                        if entry.is_symlink():
                            links.add(prefix + name)
                    elif name not in skip_dirs and entry.is_dir(follow_symlinks=False):
                        stack.append((Path(entry.path), f"{prefix}{name}/"))
        except OSError:
            continue
    return found, links


class ImageInventory:
    """The image files under a root (`image_inventory`), walked once, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._walked: tuple[set[str], set[str]] | None = None

    @property
    def names(self) -> set[str]:
        """Dataset-relative posix paths of every image file."""
        return self._walk()[0]

    @property
    def links(self) -> set[str]:
        """The names that are symbolic links (which may point out of the root)."""
        return self._walk()[1]

    def _walk(self) -> tuple[set[str], set[str]]:
        if self._walked is None:
            self._walked = image_inventory(self.root)
        return self._walked


class ImageResolver:
    """Resolves the image names a dataset mentions, without ever opening an unsafe path.

    Names are checked against the inventory from one walk of the root, so a dataset of 100,000
    rows costs set lookups, not 100,000 stat calls; only names the walk did not see are stat-ed.
    """

    def __init__(self, root: Path, inventory: ImageInventory) -> None:
        self.root = str(root)
        self.prefix = os.path.join(self.root, "")
        self.real_root = os.path.realpath(root)
        self.inventory = inventory

    def defer(self, source: SourceFile, records: list[Record]) -> None:
        """Resolve `records` (read from `source` with image_path=PENDING) on first use."""
        source.defer_image_resolution(lambda: self.resolve_all(records))

    def resolve_all(self, records: list[Record]) -> None:
        """`resolve` for many records: one set lookup each in the common case."""
        names, links, prefix = self.inventory.names, self.inventory.links, self.prefix
        for record in records:
            image = record.image
            if image in names and image not in links:
                record.set_image(prefix + image, True)
            else:
                record.set_image(None, False)
                self.resolve(record)

    def resolve(self, record: Record) -> None:
        """Set record.image_path / image_exists; image_path stays None for an unsafe name."""
        name = record.image
        if not name:
            return
        if name[0] in "/\\" or (len(name) > 2 and name[1] == ":" and name[2] in "/\\"):
            return  # absolute: LK007
        if name.startswith("..") and (len(name) == 2 or name[2] in "/\\"):
            return  # escapes the root: LK007
        if name in self.inventory.names:
            # Found by walking the real tree (symlinked folders are not followed), so it is
            # inside the root unless the file itself is a symlink.
            candidate = self.prefix + name
            if name in self.inventory.links and not self._inside(candidate):
                return
            record.image_path = candidate
            record.image_exists = True
            return
        candidate = os.path.join(self.root, name)
        if "\x00" in name:  # no file can have that name (LK001: it does not exist)
            record.image_path, record.image_exists = candidate, False
            return
        if not self._inside(candidate):
            return  # a symlink somewhere on the way points out of the root: LK007
        record.image_path = candidate
        record.image_exists = os.path.isfile(candidate)

    def _inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.real_root or real.startswith(self.real_root.rstrip(os.sep) + os.sep)


def normalise_image_name(name: str) -> str:
    """`./a.png` -> `a.png`, `sub//a.png` -> `sub/a.png` (cheap when there is nothing to do)."""
    if name and (name[0] == "." or "/." in name or "//" in name):
        return posixpath.normpath(name)
    return name

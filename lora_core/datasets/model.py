"""The dataset model: files, records (one image + its caption) and problems found while reading.

Readers produce these; rules read them; the fixer edits `Record.caption` and asks the reader that
made the dataset to write the changed captions back. Nothing here knows a file format: the only
format-specific piece a record carries is its `SourceFile.codec`, which maps offsets in the caption
text to offsets in the raw file (CSV doubles quotes, JSON escapes characters).
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lora_core.violations import Location

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "MAX_CAPTION_CHARS",
    "TRAINER_CONFIG_SUFFIXES",
    "Dataset",
    "ReadProblem",
    "Record",
    "SourceFile",
]

if TYPE_CHECKING:
    from lora_core.datasets.reader import DatasetReader

_NEWLINE = re.compile(r"\r\n|\r|\n")


#: A record's image_path before its source resolved it (see SourceFile.defer_image_resolution).
PENDING: Any = type("Pending", (), {"__repr__": lambda self: "PENDING"})()


class CaptionCodec(Protocol):
    """Maps an offset inside a caption's text to an offset inside its raw field in the file."""

    def raw_offset(self, record: Record, value_offset: int) -> int: ...


class IdentityCodec:
    """The caption is stored verbatim (sidecar files, unquoted CSV fields)."""

    def raw_offset(self, record: Record, value_offset: int) -> int:
        return value_offset


IDENTITY_CODEC = IdentityCodec()


@dataclass(eq=False)
class SourceFile:
    """A file a dataset was read from, decoded once.

    Invalid UTF-8 bytes are decoded with `surrogateescape`, so they survive a rewrite untouched and
    can be located exactly (each bad byte becomes one lone surrogate character).
    """

    path: Path
    text: str
    bom: bool = False
    invalid_utf8: bool = False  # some bytes were not UTF-8 (they are lone surrogates in `text`)
    codec: CaptionCodec = IDENTITY_CODEC  # stateless: one shared instance (a sidecar set has 100,000 sources)
    _line_starts: list[int] | None = field(default=None, repr=False)
    # Set by a reader that leaves its records' image paths to be resolved on first use.
    _resolve_images: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def path_str(self) -> str:
        """The path as a str, without building a Path (see `path`)."""
        path: str = os.fspath(self.__dict__["_path"])
        return path

    @classmethod
    def plain(cls, path: Path | str, text: str) -> SourceFile:
        """A UTF-8 file with no BOM and no invalid bytes, built without the dataclass __init__
        (a sidecar dataset makes 100,000 of them)."""
        source = cls.__new__(cls)
        source.__dict__.update(_path=path, text=text, bom=False, invalid_utf8=False, codec=IDENTITY_CODEC,
                               _line_starts=None, _resolve_images=None)
        return source

    def defer_image_resolution(self, resolve: Callable[[], None]) -> None:
        """Resolve this file's records' images (`resolve` sets them all) only when a record's
        `image_path` or `image_exists` is first read: linting captions alone never walks the
        image folder, and a big lint walks it in a worker process instead of before the rules."""
        self._resolve_images = resolve

    def resolve_images(self) -> None:
        resolve, self._resolve_images = self._resolve_images, None
        if resolve is not None:
            resolve()

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            text = self.text
            if "\r" in text:
                self._line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
            else:  # LF only: C-speed
                lengths = map(len, text.split("\n"))
                self._line_starts = list(itertools.accumulate(map((1).__add__, lengths), initial=0))[:-1]
        return self._line_starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset in `text`."""
        starts = self.line_starts
        line = bisect.bisect_right(starts, offset)
        return line, offset - starts[line - 1] + 1

    def location(self, start: int, end: int | None = None) -> Location:
        line, column = self.position(start)
        if end is None:
            return Location(self.path, line, column)
        end_line, end_column = self.position(end)
        return Location(self.path, line, column, end_line, end_column)

    def byte_offset(self, offset: int) -> int:
        """Byte offset in the file of a character offset (the BOM counts)."""
        return len(self.text[:offset].encode("utf-8", "surrogateescape")) + (3 if self.bom else 0)


def _source_path(self: SourceFile) -> Path:
    path = self.__dict__["_path"]
    if not isinstance(path, Path):
        path = self.__dict__["_path"] = Path(path)
    return path


def _set_source_path(self: SourceFile, value: Path | str) -> None:
    self.__dict__["_path"] = value


# A reader may give the path as a str: a sidecar dataset has one SourceFile per caption, and
# building 100,000 Path objects costs more than reading the files. It becomes a Path the first
# time something asks (a violation's location, a fix), which few of them ever do.
SourceFile.path = property(_source_path, _set_source_path)  # type: ignore[assignment]


class Record:
    """One image and its caption, with the exact place of each in the source file.

    Spans are raw character spans in `source.text`. A reader may leave them to be computed on
    first use (`row_line` set, spans None): the CSV reader parses with the C csv module and
    locates fields only for the records a violation or a fix actually touches.
    """

    __slots__ = (
        "index", "image", "caption", "source", "_caption_span", "_image_span", "_quoted", "row_line",
        "_image_path", "_image_exists", "_extras", "concept", "repeats", "original_caption",
    )

    def __init__(
        self,
        index: int,
        image: str | None,
        caption: str | None,
        source: SourceFile,
        caption_span: tuple[int, int] | None = None,
        image_span: tuple[int, int] | None = None,
        quoted: bool = False,
        image_path: str | None = None,
        image_exists: bool = False,
        extras: dict[str, str] | tuple[list[tuple[int, str]], list[str]] | None = None,
        concept: str | None = None,
        repeats: int | None = None,
        original_caption: str | None = None,
        row_line: int | None = None,
    ) -> None:
        self.index = index
        self.image = image  # dataset-relative path as written in the data (posix separators)
        self.caption = caption  # None: the image has no caption at all
        self.source = source
        self._caption_span = caption_span
        self._image_span = image_span
        self._quoted = quoted  # CSV: the caption cell was quoted
        self.row_line = row_line  # 1-based line where the record starts, for lazy spans
        self._image_path = image_path  # PENDING: the source resolves it on first use
        self._image_exists = image_exists
        # A dict, or (column pairs, row values) turned into one on first use: most lints never
        # look at the extra columns, and 100,000 small dicts cost a tenth of the read time.
        self._extras = extras if extras is not None else {}
        self.concept = concept  # kohya `N_name` folder name part
        self.repeats = repeats  # kohya `N_name` folder number part
        self.original_caption = original_caption  # caption as read, before any fix

    @property
    def extras(self) -> dict[str, str]:
        """The other columns of the row (CSV) or keys of the object (JSONL)."""
        if isinstance(self._extras, tuple):
            pairs, values = self._extras
            self._extras = {name: values[i] for i, name in pairs}
        return self._extras

    def __repr__(self) -> str:
        return f"Record({self.index}, image={self.image!r}, caption={self.caption!r})"

    @property
    def image_path(self) -> str | None:
        """The image's resolved absolute path; None when the name is unsafe (outside the root)
        or empty."""
        if self._image_path is PENDING:
            self.source.resolve_images()
        return self._image_path

    @image_path.setter
    def image_path(self, value: str | None) -> None:
        self._image_path = value

    @property
    def image_exists(self) -> bool:
        if self._image_path is PENDING:
            self.source.resolve_images()
        return self._image_exists

    @image_exists.setter
    def image_exists(self, value: bool) -> None:
        self._image_exists = value

    def _locate(self) -> None:
        if self._caption_span is None and self.row_line is not None:
            locate = getattr(self.source.codec, "locate", None)
            line, self.row_line = self.row_line, None  # a codec that cannot locate is not asked again
            if locate is not None:
                self.row_line = line  # kept after: the row's start (dropping a row, naming a line)
                locate(self)

    @property
    def caption_span(self) -> tuple[int, int] | None:
        self._locate()
        return self._caption_span

    @property
    def image_span(self) -> tuple[int, int] | None:
        self._locate()
        return self._image_span

    @property
    def quoted(self) -> bool:
        self._locate()
        return self._quoted

    def set_image(self, path: str | None, exists: bool) -> None:
        self._image_path, self._image_exists = path, exists

    def set_spans(self, caption_span: tuple[int, int], image_span: tuple[int, int] | None, quoted: bool) -> None:
        self._caption_span, self._image_span, self._quoted = caption_span, image_span, quoted

    def caption_location(self, start: int = 0, end: int | None = None) -> Location:
        """Location of caption[start:end] in the source file; the record's line when unknown."""
        span = self.caption_span
        if span is None:
            return self.image_location()
        codec = self.source.codec
        raw_start = span[0] + codec.raw_offset(self, start)
        raw_end = None if end is None else span[0] + codec.raw_offset(self, end)
        return self.source.location(raw_start, raw_end)

    def image_location(self) -> Location:
        if self.image_span is not None:
            return self.source.location(self.image_span[0], self.image_span[1])
        if self.caption_span is not None:
            return self.source.location(self.caption_span[0])
        return Location(self.source.path, 1, 1)

    @property
    def changed(self) -> bool:
        return self.caption != self.original_caption


@dataclass(frozen=True)
class ReadProblem:
    """Something a reader found wrong with the files themselves (rules turn these into violations).

    kind is one of: "malformed", "encoding", "bom", "mixed-newlines", "extension-mismatch",
    "orphan-caption". `image` is the dataset-relative image the problem concerns, if any.
    """

    kind: str
    location: Location
    message: str
    image: str | None = None
    source: SourceFile | None = None


#: The longest caption the rules check (characters). Real captions, long VLM prose included, stay
#: under 5,000; past this it is a pasted file or a broken export, and checking it would cost time
#: and memory out of proportion (a 10 MB cell).
MAX_CAPTION_CHARS = 200_000

#: The suffixes of the trainer configs lorakit reads as datasets (`Dataset.read_through_config`).
TRAINER_CONFIG_SUFFIXES = (".toml", ".json", ".yaml", ".yml")


@dataclass(eq=False)
class Dataset:
    """Everything read from one dataset path."""

    root: Path  # folder image paths are relative to
    path: Path  # what the user named: a metadata file or a folder
    format: str  # name of the reader that produced it ("csv", "jsonl", "sidecar", ...)
    records: list[Record]
    sources: list[SourceFile]
    problems: list[ReadProblem] = field(default_factory=list)
    caption_column: str = "text"
    reader: DatasetReader | None = field(default=None, repr=False)
    # Every image file found under root, or what finds them on first use (`images_on_disk`).
    _images_on_disk: set[str] | Callable[[], set[str]] = field(default_factory=set, repr=False)
    # Settings the dataset's own files state (a trainer's dataset config: its class tokens,
    # keep_tokens), {section: {key: value}}; a lorakit config that sets the same key wins.
    config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # A trainer dataset config's subsets as read (kohya: image_dir, num_repeats, ...), for export.
    subsets: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def images_on_disk(self) -> set[str]:
        """Every image file under root (dataset-relative posix paths), for "caption-missing"."""
        if callable(self._images_on_disk):
            self._images_on_disk = self._images_on_disk()
        return self._images_on_disk

    @property
    def location(self) -> Location:
        """Where dataset-level violations point: line 1 of the metadata file, or the folder."""
        return Location(self.path, 1, 1) if self.path.is_file() else Location(self.root)

    def problems_of(self, kind: str) -> list[ReadProblem]:
        return [p for p in self.problems if p.kind == kind]

    @property
    def read_through_config(self) -> bool:
        """Read through a trainer's config (kohya, ai-toolkit, OneTrainer, SimpleTuner) rather
        than a metadata file or a folder: its folders lie anywhere, and one image file can be
        reached under two names (a folder named twice)."""
        return self.path.suffix.lower() in TRAINER_CONFIG_SUFFIXES

    @property
    def captioned(self) -> list[Record]:
        """Records that have caption text (the ones text rules look at). A caption longer than
        MAX_CAPTION_CHARS is not among them: LK011 reports it, and no rule spends time or memory
        on it, nor a fix rewrites it."""
        return [r for r in self.records if r.caption is not None and len(r.caption) <= MAX_CAPTION_CHARS]

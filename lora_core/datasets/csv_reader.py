"""HF imagefolder `metadata.csv`: a `file_name` column, a caption column, any extra columns.

The parser is our own (a few regular expressions) rather than the csv module because every field
must know its exact character span: violations point at line:column, and fixes are spliced into
the original text so that every other byte of the file (quoting, extra columns, newlines, invalid
bytes) stays exactly as it was.
"""

from __future__ import annotations

import bisect
import csv
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from lora_core.datasets.model import PENDING, Dataset, ReadProblem, Record, SourceFile
from lora_core.datasets.reader import (
    DatasetSettings,
    MetadataFileReader,
    encode_source,
    normalise_image_name,
    splice,
)
from lora_core.violations import Location

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
# Like the csv module (and pandas), a quote inside an unquoted field is literal text.
_UNQUOTED = re.compile(r"[^,\r\n]*")
_TO_EOL = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")


@dataclass(slots=True)
class Field:
    value: str
    start: int  # raw span, quotes included
    end: int
    quoted: bool

    @property
    def inner(self) -> tuple[int, int]:
        return (self.start + 1, self.end - 1) if self.quoted else (self.start, self.end)


class RowError(Exception):
    def __init__(self, offset: int, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.offset, self.message, self.fatal = offset, message, fatal


def parse_row(text: str, pos: int) -> tuple[list[Field], int]:
    """Parse one CSV record starting at pos: (fields with raw spans, offset after its newline).

    Raises RowError; `fatal` means the rest of the file cannot be parsed (an unclosed quote)."""
    n = len(text)
    fields: list[Field] = []
    while True:
        if text.startswith('"', pos):
            m = _QUOTED.match(text, pos)
            if m is None:
                raise RowError(pos, "unclosed quote: this field's opening quote is never closed, "
                                    "so the rest of the file cannot be read", fatal=True)
            fields.append(Field(m.group(1).replace('""', '"'), pos, m.end(), True))
            pos = m.end()
            if pos < n and text[pos] not in ",\r\n":
                raise RowError(pos, f"unexpected character {text[pos]!r} after a closing quote "
                                    '(a quote inside a quoted field must be doubled: "")')
        else:
            m = _UNQUOTED.match(text, pos)
            assert m is not None
            fields.append(Field(m.group(), pos, m.end(), False))
            pos = m.end()
        if pos >= n:
            return fields, pos
        if text[pos] == ",":
            pos += 1
            if pos == n:
                fields.append(Field("", n, n, False))
                return fields, pos
            continue
        return fields, pos + (2 if text.startswith("\r\n", pos) else 1)


def parse_csv(source: SourceFile, problems: list[ReadProblem]) -> list[tuple[int, list[str]]]:
    """(line where the row starts, values) for every non-blank row; malformed rows become problems.

    The fast path is the C csv module; only a file it rejects is parsed again by `parse_row`,
    which knows exactly where and why."""
    text = source.text
    try:
        return _parse_fast(source)
    except csv.Error:
        pass
    rows: list[tuple[int, list[str]]] = []
    pos, n = 0, len(text)
    while pos < n:
        start = pos
        try:
            fields, pos = parse_row(text, pos)
        except RowError as exc:
            problems.append(ReadProblem("malformed", source.location(exc.offset), exc.message, source=source))
            if exc.fatal:
                return rows
            pos = _TO_EOL.match(text, exc.offset).end()  # type: ignore[union-attr]
            continue
        if len(fields) == 1 and not fields[0].quoted and fields[0].value == "":
            continue  # a blank line: pandas and HF datasets skip them too
        rows.append((source.position(start)[0], [f.value for f in fields]))
    return rows


def _parse_fast(source: SourceFile) -> list[tuple[int, list[str]]]:
    text = source.text
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = list(reader)
    if reader.line_num == len(rows):
        # One physical line per row (no quoted line breaks): row k starts on line k + 1.
        numbered = list(zip(range(1, len(rows) + 1), rows))
        if [] not in rows and [""] not in rows:
            return numbered  # no blank lines to drop: the common case
    else:
        numbered = []
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        line = 1
        for values in reader:
            numbered.append((line, values))
            line = reader.line_num + 1
    starts = None
    out = []
    for line, values in numbered:
        if values and values != [""]:
            out.append((line, values))
        elif values == [""]:
            starts = starts or source.line_starts
            if text.startswith('""', starts[line - 1]):
                out.append((line, values))  # a lone empty quoted field is a row, not a blank line
    return out


class CsvRowCodec:
    """Locates a CSV record's fields on demand and maps caption offsets through doubled quotes."""

    def __init__(self, image_idx: int, caption_idx: int) -> None:
        self.image_idx, self.caption_idx = image_idx, caption_idx
        # record index -> (the caption as read, where its quotes are): a long caption with many
        # violations is scanned once, not once a violation
        self._quotes: dict[int, tuple[str, list[int]]] = {}

    def locate(self, record: Record) -> None:
        assert record.row_line is not None
        fields, _ = parse_row(record.source.text, record.source.line_starts[record.row_line - 1])
        caption, image = fields[self.caption_idx], fields[self.image_idx]
        record.set_spans(caption.inner, image.inner, caption.quoted)

    def raw_offset(self, record: Record, value_offset: int) -> int:
        if not record.quoted or record.original_caption is None:
            return value_offset
        # Offsets past a fix point into the new text; doubled quotes are counted in the caption as read.
        original = record.original_caption
        cached = self._quotes.get(record.index)
        if cached is None or cached[0] is not original:
            positions = [m.start() for m in re.finditer('"', original)] if '"' in original else []
            cached = self._quotes[record.index] = (original, positions)
        return value_offset + bisect.bisect_left(cached[1], value_offset)


class CsvReader(MetadataFileReader):
    name = "csv"
    description = "HF imagefolder metadata.csv (file_name + caption column, extra columns kept)"
    priority = 10
    filename = "metadata.csv"

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        dataset, source, resolver = self.open(path, settings)
        file, problems = dataset.path, dataset.problems
        rows = parse_csv(source, problems)
        if not rows:
            what = "is empty" if not source.text.strip() else "has no readable rows"
            problems.append(
                ReadProblem(
                    "malformed", source.location(0),
                    f"file {what}: expected a header row with `{settings.image_column}` and "
                    f"`{settings.caption_column}` columns",
                    source=source,
                )
            )
            return dataset
        (header_line, columns), body = rows[0], rows[1:]
        header_offset = source.line_starts[header_line - 1]
        header = parse_row(source.text, header_offset)[0]
        image_idx = self._column(columns, settings.image_column, header, source, problems)
        caption_idx = self._column(columns, settings.caption_column, header, source, problems)
        if image_idx is None or caption_idx is None:
            return dataset
        source.codec = CsvRowCodec(image_idx, caption_idx)
        if not body and not problems:
            problems.append(
                ReadProblem("malformed", source.location(header_offset),
                            "the file has a header row but no data rows", source=source)
            )
        width = len(columns)
        extras = [(i, columns[i]) for i in range(width) if i not in (image_idx, caption_idx)]
        records = dataset.records
        append = records.append
        for line, values in body:
            if len(values) != width:
                problems.append(
                    ReadProblem(
                        "malformed", Location(file, line, 1),
                        f"row has {len(values)} fields but the header has {width}; "
                        "the row is skipped (an unquoted comma in a caption?)",
                        source=source,
                    )
                )
                continue
            caption = values[caption_idx]
            image = normalise_image_name(values[image_idx])
            append(Record(len(records), image, caption, source, None, None, False, PENDING, False,
                          (extras, values), None, None, caption, line))
        resolver.defer(source, records)
        return dataset

    @staticmethod
    def _column(
        columns: list[str], wanted: str, header: list[Field], source: SourceFile, problems: list[ReadProblem]
    ) -> int | None:
        positions = [i for i, c in enumerate(columns) if c == wanted]
        if len(positions) > 1:
            second = header[positions[1]]
            problems.append(
                ReadProblem("malformed", source.location(second.start),
                            f"duplicate header: column `{wanted}` appears {len(positions)} times",
                            source=source)
            )
            return None
        if positions:
            for i, name in enumerate(columns):
                if name != wanted and columns.count(name) > 1 and i == max(
                    j for j, c in enumerate(columns) if c == name
                ):
                    problems.append(
                        ReadProblem("malformed", source.location(header[i].start),
                                    f"duplicate header: column `{name}` appears more than once; "
                                    "only the first is kept as an extra column", source=source)
                    )
            return positions[0]
        hint = ""
        close = difflib.get_close_matches(wanted, [c.strip() for c in columns], n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean `{close[0]}`?"
            hint += " it has stray spaces)" if close[0] == wanted else ")"
        elif len(columns) > 0:
            hint = f" (columns found: {', '.join(repr(c) for c in columns[:6])})"
        problems.append(
            ReadProblem("malformed", source.location(header[0].start),
                        f"missing column `{wanted}` in the header row{hint}", source=source)
        )
        return None

    def row_span(self, record: Record) -> tuple[int, int]:
        assert record.row_line is not None
        start = record.source.line_starts[record.row_line - 1]
        return start, parse_row(record.source.text, start)[1]

    def render(self, dataset: Dataset, file_changes: dict[Path, set[str]]) -> dict[Path, bytes]:
        out: dict[Path, bytes] = {}
        for source in dataset.sources:
            replacements = []
            for record in dataset.records:
                if record.source is source and record.changed and record.caption_span is not None:
                    start, end = record.caption_span
                    if record.quoted:
                        start, end = start - 1, end + 1
                    replacements.append((start, end, encode_field(record.caption or "", record.quoted)))
            changes = file_changes.get(source.path, set())
            if replacements or changes:
                out[source.path] = encode_source(source, splice(source.text, replacements), changes)
        return out


def encode_field(value: str, quoted: bool) -> str:
    """A CSV field for value: quoted if it was quoted before or now has to be (QUOTE_MINIMAL)."""
    if quoted or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value

"""HF imagefolder `metadata.csv`: a `file_name` column, a caption column, any extra columns.

The parser is our own (a few regular expressions) rather than the csv module because every field
must know its exact character span: violations point at line:column, and fixes are spliced into
the original text so that every other byte of the file (quoting, extra columns, newlines, invalid
bytes) stays exactly as it was.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from lora_core.datasets.model import Dataset, ReadProblem, Record, SourceFile
from lora_core.datasets.reader import (
    DatasetReader,
    DatasetSettings,
    ImageResolver,
    decode_source,
    encode_source,
    image_inventory,
    normalise_image_name,
    read_bytes,
    splice,
)

_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
_UNQUOTED = re.compile(r'[^,"\r\n]*')
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


class QuotedFieldCodec:
    """Inside a quoted CSV field every `"` of the value is stored as `""`."""

    def raw_offset(self, record: Record, value_offset: int) -> int:
        if not record.quoted or record.caption is None:
            return value_offset
        return value_offset + record.caption.count('"', 0, value_offset)


def parse_csv(source: SourceFile, problems: list[ReadProblem]) -> list[list[Field]]:
    """Split text into rows of fields with exact spans; malformed rows become problems."""
    text = source.text
    n = len(text)
    pos = 0
    rows: list[list[Field]] = []
    quoted_match = _QUOTED.match
    unquoted_match = _UNQUOTED.match
    while pos < n:
        fields: list[Field] = []
        bad: str | None = None
        while True:
            if text.startswith('"', pos):
                m = quoted_match(text, pos)
                if m is None:
                    problems.append(
                        ReadProblem(
                            "malformed",
                            source.location(pos),
                            "unclosed quote: this field's opening quote is never closed, "
                            "so the rest of the file cannot be read",
                            source=source,
                        )
                    )
                    return rows
                fields.append(Field(m.group(1).replace('""', '"'), pos, m.end(), True))
                pos = m.end()
                if pos < n and text[pos] not in ",\r\n":
                    bad = f"unexpected character {text[pos]!r} after a closing quote"
            else:
                m = unquoted_match(text, pos)
                end = m.end()
                fields.append(Field(m.group(), pos, end, False))
                pos = end
                if pos < n and text[pos] == '"':
                    bad = 'a quote inside an unquoted field (quote the whole field and double the ")'
            if bad is not None:
                problems.append(ReadProblem("malformed", source.location(pos), bad, source=source))
                pos = _TO_EOL.match(text, pos).end()  # type: ignore[union-attr]
                fields = []
                break
            if pos >= n:
                break
            char = text[pos]
            if char == ",":
                pos += 1
                if pos == n:
                    fields.append(Field("", n, n, False))
                    break
                continue
            pos += 2 if text.startswith("\r\n", pos) else 1
            break
        if not fields:
            continue
        if len(fields) == 1 and not fields[0].quoted and fields[0].value == "":
            continue  # a blank line: pandas and HF datasets skip them too
        rows.append(fields)
    return rows


class CsvReader(DatasetReader):
    name = "csv"
    description = "HF imagefolder metadata.csv (file_name + caption column, extra columns kept)"
    priority = 10

    def claims(self, path: Path) -> bool:
        if path.is_dir():
            return (path / "metadata.csv").is_file()
        return path.suffix.lower() == ".csv"

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        file = path / "metadata.csv" if path.is_dir() else path
        root = file.parent
        problems: list[ReadProblem] = []
        source = decode_source(file, read_bytes(file), problems)
        source.codec = QuotedFieldCodec()
        dataset = Dataset(
            root=root, path=file, format=self.name, records=[], sources=[source], problems=problems,
            caption_column=settings.caption_column, reader=self,
        )
        dataset.images_on_disk, links = image_inventory(root)
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
        header, body = rows[0], rows[1:]
        columns = [f.value for f in header]
        image_idx = self._column(columns, settings.image_column, header, source, problems)
        caption_idx = self._column(columns, settings.caption_column, header, source, problems)
        if image_idx is None or caption_idx is None:
            return dataset
        if not body:
            problems.append(
                ReadProblem("malformed", source.location(header[0].start),
                            "the file has a header row but no data rows", source=source)
            )
        resolver = ImageResolver(root, dataset.images_on_disk, links)
        width = len(header)
        extra_idx = [i for i in range(width) if i not in (image_idx, caption_idx)]
        records = dataset.records
        for fields in body:
            if len(fields) != width:
                problems.append(
                    ReadProblem(
                        "malformed", source.location(fields[0].start),
                        f"row has {len(fields)} fields but the header has {width}; "
                        "the row is skipped (an unquoted comma in a caption?)",
                        source=source,
                    )
                )
                continue
            image_field = fields[image_idx]
            caption_field = fields[caption_idx]
            record = Record(
                index=len(records),
                image=normalise_image_name(image_field.value),
                caption=caption_field.value,
                source=source,
                caption_span=caption_field.inner,
                image_span=image_field.inner,
                quoted=caption_field.quoted,
                extras={columns[i]: fields[i].value for i in extra_idx},
                original_caption=caption_field.value,
            )
            resolver.resolve(record)
            records.append(record)
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

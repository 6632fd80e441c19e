"""HF imagefolder `metadata.jsonl`: one JSON object per line with `file_name` and the caption key.

Each caption keeps the span of its JSON string token, so a fix replaces just that token and the
rest of the line (key order, spacing, other values) is untouched.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from pathlib import Path

from lora_core.datasets.model import PENDING, Dataset, ReadProblem, Record
from lora_core.datasets.reader import (
    DatasetSettings,
    MetadataFileReader,
    encode_source,
    normalise_image_name,
    splice,
)

_LINE = re.compile(r"[^\r\n]*")
# A JSON string's body. Possessive (Python 3.11+): the regex engine keeps no backtracking state per
# character, so a 50 MB caption costs its own size, not gigabytes.
_POSSESSIVE = sys.version_info >= (3, 11)
_STRING_TOKEN = r'"((?:[^"\\]++|\\.)*+)"' if _POSSESSIVE else r'"((?:[^"\\]|\\.)*)"'


#: Any `"key": "string value"` pair of a JSON line (keys and values with their escapes).
_ANY_PAIR = re.compile(_STRING_TOKEN + r"\s*:\s*" + _STRING_TOKEN)


class JsonStringCodec:
    """Maps caption offsets through JSON escapes (`\\"`, `\\n`, `\\u00e9`, surrogate pairs)."""

    def __init__(self) -> None:
        # record index -> (caption span, decoded offset of each escape, raw characters added by
        # the escapes so far): built once a record, so a long caption with many violations costs
        # one pass, not one a violation
        self._escapes: dict[int, tuple[tuple[int, int], list[int], list[int]]] = {}

    def raw_offset(self, record: Record, value_offset: int) -> int:
        if record.caption_span is None:
            return value_offset
        span = record.caption_span
        cached = self._escapes.get(record.index)
        if cached is None or cached[0] != span:
            cached = self._escapes[record.index] = (span, *_escape_map(record.source.text[span[0]:span[1]]))
        _, decoded_at, added = cached
        before = bisect.bisect_left(decoded_at, value_offset)  # escapes among the first value_offset characters
        return value_offset + (added[before - 1] if before else 0)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_map(raw: str) -> tuple[list[int], list[int]]:
    """For each escape of a JSON string body: its offset in the decoded text, and how many raw
    characters the escapes up to it add (`\\"` 1, `\\u00e9` 5, a surrogate pair 11)."""
    decoded_at: list[int] = []
    added: list[int] = []
    i = decoded = total = 0
    while (j := raw.find("\\", i)) >= 0:
        decoded += j - i
        if raw.startswith("u", j + 1):
            try:
                code = int(raw[j + 2:j + 6], 16)
            except ValueError:
                code = 0
            width = 12 if 0xD800 <= code < 0xDC00 and raw.startswith("\\u", j + 6) else 6
        else:
            width = 2
        decoded_at.append(decoded)
        total += width - 1
        added.append(total)
        decoded += 1
        i = j + width
    return decoded_at, added


class JsonlReader(MetadataFileReader):
    name = "jsonl"
    description = "HF imagefolder metadata.jsonl (one JSON object per line)"
    priority = 10
    filename = "metadata.jsonl"

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        dataset, source, resolver = self.open(path, settings)
        source.codec = JsonStringCodec()
        problems = dataset.problems
        key_patterns = {
            key: re.compile(r'"' + re.escape(key) + r'"\s*:\s*' + _STRING_TOKEN)
            for key in (settings.image_column, settings.caption_column)
        }
        text = source.text
        pos = 0
        n = len(text)
        while pos <= n:
            m = _LINE.match(text, pos)
            assert m is not None
            line_start, line_end = m.span()
            line = m.group()
            pos = line_end + (2 if text.startswith("\r\n", line_end) else 1)
            if not line.strip():
                if pos > n:
                    break
                continue
            record = self._record(line, line_start, source, settings, key_patterns, problems, len(dataset.records))
            if record is not None:
                dataset.records.append(record)
        resolver.defer(source, dataset.records)
        if not dataset.records and not problems:
            problems.append(
                ReadProblem("malformed", source.location(0),
                            f"file is empty: expected one JSON object per line with `{settings.image_column}` "
                            f"and `{settings.caption_column}`", source=source)
            )
        return dataset

    @staticmethod
    def _record(line, line_start, source, settings, key_patterns, problems, index) -> Record | None:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                ReadProblem("malformed", source.location(line_start + exc.pos),
                            f"invalid JSON: {exc.msg}", source=source)
            )
            return None
        except (RecursionError, ValueError) as exc:  # nested too deeply; an integer past Python's digit limit
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0].strip()
            problems.append(ReadProblem("malformed", source.location(line_start), f"invalid JSON: {why}",
                                        source=source))
            return None
        if not isinstance(obj, dict):
            problems.append(
                ReadProblem("malformed", source.location(line_start),
                            f"expected a JSON object, got {type(obj).__name__}", source=source)
            )
            return None
        spans: dict[str, tuple[int, int] | None] = {}
        for key in (settings.image_column, settings.caption_column):
            value = obj.get(key)
            if not isinstance(value, str):
                what = "missing" if key not in obj else f"not a string ({json.dumps(value)[:40]})"
                problems.append(
                    ReadProblem("malformed", source.location(line_start),
                                f"key `{key}` is {what}", source=source)
                )
                return None
            spans[key] = None
            for m in key_patterns[key].finditer(line):
                if json.loads('"' + m.group(1) + '"') == value:
                    spans[key] = (line_start + m.start(1), line_start + m.end(1))
            if spans[key] is None:  # the key written with escapes (`"\u0074ext"`): decode every key
                for m in _ANY_PAIR.finditer(line):
                    try:
                        found = (json.loads('"' + m.group(1) + '"') == key
                                 and json.loads('"' + m.group(2) + '"') == value)
                    except ValueError:
                        continue
                    if found:
                        spans[key] = (line_start + m.start(2), line_start + m.end(2))
        caption = obj[settings.caption_column]
        for key in (settings.image_column, settings.caption_column):
            surrogate = _LONE_SURROGATE.search(obj[key])
            if surrogate is None:
                continue
            # A JSON escape such as `\ud800` decodes to half a character: no encoder, tokenizer or
            # trainer can write or read it. The line is reported; its caption is read with U+FFFD.
            problems.append(ReadProblem(
                "malformed", source.location(line_start), f"key `{key}` holds a lone surrogate "
                f"(`\\u{ord(surrogate.group()):04x}`, half of a character): no trainer can encode it", source=source))
            if key == settings.image_column:
                return None
            caption = _LONE_SURROGATE.sub("\ufffd", caption)
        return Record(
            index=index,
            image=normalise_image_name(obj[settings.image_column]),
            caption=caption,
            source=source,
            image_path=PENDING,
            caption_span=spans[settings.caption_column],
            image_span=spans[settings.image_column],
            extras={k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()
                    if k not in (settings.image_column, settings.caption_column)},
            original_caption=caption,
        )

    def row_span(self, record: Record) -> tuple[int, int]:
        """The record's line: one JSON object a line."""
        assert record.image_span is not None or record.caption_span is not None
        source = record.source
        line, _ = source.position((record.image_span or record.caption_span or (0, 0))[0])
        starts = source.line_starts
        return starts[line - 1], starts[line] if line < len(starts) else len(source.text)

    def render(self, dataset: Dataset, file_changes: dict[Path, set[str]]) -> dict[Path, bytes]:
        out: dict[Path, bytes] = {}
        source = dataset.sources[0]
        replacements = []
        for record in dataset.records:
            if not record.changed or record.caption is None:
                continue
            if record.caption_span is None:
                raise RuntimeError(f"cannot locate the caption of {record.image} in {source.path}")
            start, end = record.caption_span
            old_raw = source.text[start:end]
            ascii_only = old_raw.isascii() and "\\u" in old_raw
            replacements.append((start, end, json.dumps(record.caption, ensure_ascii=ascii_only)[1:-1]))
        changes = file_changes.get(source.path, set())
        if replacements or changes:
            out[source.path] = encode_source(source, splice(source.text, replacements), changes)
        return out

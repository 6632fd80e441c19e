"""LK0xx: is the dataset well-formed? Files, rows, encodings, image paths.

These rules mostly turn what the reader found (ReadProblems) and how image names resolved into
violations; they run before any caption wording matters, because a trainer given a broken
dataset either crashes mid-run or silently trains on the wrong thing.
"""

from __future__ import annotations

import bisect
import posixpath
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from lora_core import Fix, RuleOption, Severity
from lora_core.datasets.model import MAX_CAPTION_CHARS, Dataset, ReadProblem, Record
from lora_core.datasets.reader import describe_invalid_bytes, invalid_byte_spans, regularisation_parent
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.violations import Applicability, Edit, Location, Violation


class _ProblemRule(Rule):
    """A rule that reports one kind of ReadProblem."""

    problem_kind = ""

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for problem in dataset.problems_of(self.problem_kind):
            yield self.at(problem.location, problem.message, image=problem.image, fix=self.fix_for(problem))

    def fix_for(self, problem: ReadProblem) -> Fix | None:
        return None


class ImageMissing(Rule):
    """## What it does
    Reports a row (or caption sidecar) that names an image file which does not exist.

    ## Why it matters
    Trainers either crash when they reach the row or skip it silently, so the caption you wrote
    never trains. A typo in `file_name`, a renamed file or a wrong extension are the usual causes.

    ## Example
    ```csv
    file_name,text
    img_01.jpg,"cybrpnk, neon city"   # the file on disk is img_01.png
    ```

    ## Fix
    Correct the `file_name`, restore the image, or delete the row. When only the letter case
    differs, the message names the file that does exist.
    """

    code = "LK001"
    name = "image-missing"
    summary = "A row or caption sidecar names an image that does not exist"
    severity = Severity.ERROR
    # LK001, LK002 and LK007 read the image folder, walked once on first use: one unit of work.
    shares = "image-files"
    cost = 4  # the walk of the folder

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        folded: dict[str, str] | None = None
        for record in dataset.records:
            if record.image_exists:
                continue
            if not record.image:
                yield self.at_image(record, "the image column is empty")
                continue
            if record.image_path is None:
                continue  # unsafe path: LK007
            if folded is None:
                folded = {name.lower(): name for name in dataset.images_on_disk}
            other = folded.get(record.image.lower())
            hint = f" (`{other}` exists: file names are case-sensitive)" if other else ""
            yield self.at_image(record, f"image `{record.image}` does not exist{hint}")
        for problem in dataset.problems_of("orphan-caption"):
            yield self.at(problem.location, problem.message, image=problem.image)


class CaptionMissing(Rule):
    """## What it does
    Reports an image in the dataset folder that has no caption: no row in metadata.csv /
    metadata.jsonl, or no caption sidecar beside it.

    ## Why it matters
    kohya sd-scripts and most trainers train such images with an empty caption (or the class
    token only): the LoRA learns the image with no words attached, which weakens the trigger.

    ## Example
    `img_07.png` sits in the folder, but metadata.csv has no `img_07.png` row.

    ## Fix
    Add a caption (`lorakit caption` can draft one), or move the image out of the dataset folder.
    """

    code = "LK002"
    name = "caption-missing"
    summary = "An image in the dataset has no caption (no row, no sidecar)"
    severity = Severity.ERROR
    shares = "image-files"
    cost = 2

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        listed = {r.image for r in dataset.records}
        excused = {p.image for p in dataset.problems_of("extension-mismatch")}
        listed_folded = {name.lower() for name in listed if name}
        regularisation: dict[str, list[str]] = {}
        metadata_file = dataset.path.is_file()
        for image in sorted(dataset.images_on_disk - listed - excused):
            if image.lower() in listed_folded:
                continue  # listed with another letter case: LK001 reports the row
            folder = posixpath.dirname(image)
            if not metadata_file and regularisation_class(folder) is not None:
                regularisation.setdefault(folder, []).append(image)
                continue
            if metadata_file:
                where: Location = Location(dataset.path, 1, 1)
                message = f"image `{image}` has no caption: it is not listed in {dataset.path.name}"
            else:
                stem = posixpath.splitext(image)[0]
                where = Location(dataset.root / image, 1, 1)
                caption_ext = ctx.section("dataset").get("caption-extension", ".txt")
                message = f"image `{image}` has no caption: `{stem}{caption_ext}` does not exist"
            yield self.at(where, message, image=image)
        for folder, images in regularisation.items():
            # kohya trains a regularisation image without a caption file on its folder's class
            # (`1_girl` -> "girl"): the usual way to keep class images, not a missing caption.
            notice = self.at(Location(dataset.root / images[0], 1, 1),
                             f"{len(images)} regularisation images in `{folder}` have no caption file: kohya "
                             f"captions them with the folder's class `{regularisation_class(folder)}` (e.g. "
                             f"`{images[0]}`)", image=images[0], regularisation=True, images=len(images))
            notice.severity = Severity.INFO
            yield notice


_KOHYA_FOLDER = re.compile(r"^(\d+)_(.+)$")


def regularisation_class(folder: str) -> str | None:
    """The class of a kohya regularisation folder (`img_reg/1_girl` -> `girl`): an `N_class`
    folder inside a folder named for regularisation images (`reg`, `img_reg`, `reg_images`,
    `regularization`, `class_images`), as kohya's docs lay them out; else None."""
    parts = folder.split("/")
    if len(parts) < 2:
        return None
    found = _KOHYA_FOLDER.match(parts[-1])
    if found is None or not any(regularisation_parent(part) for part in parts[:-1]):
        return None
    return found.group(2).replace("_", " ")


class CaptionTooLong(Rule):
    """## What it does
    Reports a caption longer than 200,000 characters, and leaves it unchecked: no other rule
    reads it, and no fix rewrites it.

    ## Why it matters
    No caption is that long: it is a pasted document, a broken export or a merge gone wrong. A
    text encoder reads a few hundred tokens of it; checking it all would cost minutes and
    gigabytes.

    ## Example
    A metadata.csv cell holding a whole log file.

    ## Fix
    Replace it with the image's caption.
    """

    code = "LK011"
    name = "caption-too-long"
    summary = "A caption over 200,000 characters (not checked further)"
    severity = Severity.ERROR

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for record in dataset.records:
            caption = record.caption
            if caption is not None and len(caption) > MAX_CAPTION_CHARS:
                yield self.at_image(record, f"caption is {len(caption):,} characters (over {MAX_CAPTION_CHARS:,}): "
                                    "not a caption, and not checked further", characters=len(caption))


_BLANK = "\u200b\u200c\u200d\u2060\ufeff\u00a0 \t\r\n"


class CaptionEmpty(Rule):
    """## What it does
    Reports a caption that is empty or holds only whitespace or invisible characters.

    ## Why it matters
    An empty caption trains the image unconditionally: the LoRA bleeds into every prompt. Some
    trainers abort on it, late in the run, after latents are cached.

    ## Example
    ```csv
    img_03.png,"  "
    ```

    ## Fix
    Write the caption, or remove the image from the dataset.
    """

    code = "LK003"
    name = "caption-empty"
    summary = "Empty or whitespace-only caption"
    severity = Severity.ERROR

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for record in ctx.captioned:
            caption = record.caption
            if caption and caption.strip(_BLANK):
                continue
            yield self.at_caption(record, "caption is empty" if not caption else "caption holds only whitespace")


class InvalidEncoding(Rule):
    """## What it does
    Reports bytes that are not valid UTF-8, with their byte offset in the file. Every other row is
    still linted, and a `--fix` elsewhere in the file writes these bytes back unchanged.

    ## Why it matters
    Trainers read captions as UTF-8; kohya sd-scripts and the diffusers scripts crash with a
    `UnicodeDecodeError` mid-run, or (with errors ignored) train on mangled words. The usual cause
    is a caption file saved as Windows-1252 / latin-1 by a spreadsheet.

    ## Example
    `caf\\xe9 interior` saved in latin-1: byte 0xE9 is not valid UTF-8.

    ## Fix
    Unsafe fix, for the bytes inside a caption: read them as Windows-1252 (the usual cause), which
    the message shows first (`as cp1252 it would read 'é'`); check that the result is what was
    meant. Otherwise re-save the file as UTF-8, e.g. `iconv -f cp1252 -t utf-8 metadata.csv >
    fixed.csv`.
    """

    code = "LK004"
    name = "invalid-encoding"
    summary = "Caption file is not valid UTF-8 (reports the byte offset)"
    severity = Severity.ERROR
    fix = Applicability.UNSAFE

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for source in dataset.sources:
            if not source.invalid_utf8:
                continue
            spans = invalid_byte_spans(source.text)
            if not spans:
                continue
            seen_lines: set[int] = set()
            # Bad bytes inside a caption: reported on the caption, with the cp1252 reading as a fix.
            for record in dataset.records:
                if record.source is not source or not record.caption or record.caption.isascii():
                    continue
                violation = self._in_caption(record)
                if violation is not None and violation.location is not None:
                    seen_lines.add(violation.location.line)
                    yield violation
            cache: list = []
            for start, end in spans:
                location = source.location(start, end)
                if location.line in seen_lines:
                    continue  # one report per line is enough to find the row
                seen_lines.add(location.line)
                image = _image_at(dataset, source, start, cache)
                yield self.at(location, describe_invalid_bytes(source, start, end), image=image)


    def _in_caption(self, record: Record) -> Violation | None:
        caption = record.caption or ""
        runs = list(_BAD_BYTES.finditer(caption))
        if not runs or record.caption_span is None:
            return None
        edits = []
        for run in runs:
            try:
                text = run.group().encode("utf-8", "surrogateescape").decode("cp1252")
            except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D mean nothing in cp1252: no guess
                edits = []
                break
            edits.append(Edit(run.start(), run.end(), text))
        first = runs[0]
        source = record.source
        raw_start = record.caption_span[0] + source.codec.raw_offset(record, first.start())
        message = describe_invalid_bytes(source, raw_start, raw_start + (first.end() - first.start()))
        fix = Fix("read the bytes as cp1252", Applicability.UNSAFE, tuple(edits)) if edits else None
        return self.at_caption(record, message, (first.start(), first.end()), fix)


_BAD_BYTES = re.compile("[\udc80-\udcff]+")


def _image_at(dataset: Dataset, source, offset: int, cache: list) -> str | None:
    """The image of the record that starts last at or before `offset` in this source."""
    if not cache:
        cache.append(sorted(
            (source.line_starts[r.row_line - 1] if r.row_line is not None
             else (r.image_span or r.caption_span or (0, 0))[0], r.image or "")
            for r in dataset.records if r.source is source
        ))
    starts = cache[0]
    index = bisect.bisect_right(starts, (offset, "\U0010ffff")) - 1
    return (starts[index][1] or None) if index >= 0 else None


class EncodingHygiene(_ProblemRule):
    """## What it does
    Reports a UTF-8 byte order mark at the start of a caption file, and files that mix line
    endings (CRLF and LF).

    ## Why it matters
    A BOM becomes part of the first column name (`\\ufefffile_name`) for many CSV readers, or the
    first word of a sidecar caption, where it silently breaks trigger-word matching. Mixed line
    endings come from edits on different systems and make diffs and some parsers misbehave.

    ## Example
    A metadata.csv exported by Excel as "CSV UTF-8" starts with the bytes `EF BB BF`.

    ## Fix
    Safe fix: the BOM is removed and line endings are normalised to the file's dominant one.
    """

    code = "LK005"
    name = "encoding-hygiene"
    summary = "Byte order mark or mixed line endings in a caption file"
    severity = Severity.WARNING
    fix = Applicability.SAFE

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for kind, change, description in (("bom", "strip-bom", "remove the byte order mark"),
                                          ("mixed-newlines", "normalize-newlines", "use one line ending")):
            for problem in dataset.problems_of(kind):
                fix = Fix(description, Applicability.SAFE, file_changes=frozenset({change}))
                yield self.at(problem.location, problem.message, image=problem.image, fix=fix)


class DuplicateEntry(Rule):
    """## What it does
    Reports an image listed more than once in metadata.csv / metadata.jsonl.

    ## Why it matters
    The image trains twice per epoch with two different captions (or the same one twice),
    silently doubling its weight; HF `datasets` keeps both rows.

    ## Example
    ```csv
    img_04.png,"cybrpnk, alley"
    img_04.png,"cybrpnk, neon alley at night"
    ```

    ## Fix
    Keep one row per image: merge the captions. Use kohya repeat folders to weight images on purpose.
    """

    code = "LK006"
    name = "duplicate-entry"
    summary = "The same image is listed twice"
    severity = Severity.ERROR

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        augmented = _caption_augmentation(self, dataset)
        if augmented is not None:
            yield augmented[0]
        by_file = dataset.read_through_config
        first: dict[str, Record] = {}
        # A trainer config that names one folder twice (a subset and `is_reg`, say) lists every image
        # of it twice under two labels (`img`, `img~2`): one finding per such folder, not per image.
        folders_again: dict[tuple[str, str], list[Record]] = {}
        for record in dataset.records:
            if not record.image:
                continue
            # A trainer config can reach one file under two names; a metadata file names each once.
            key = (record.image_path or record.image) if by_file else record.image
            seen = first.get(key)
            if seen is None:
                first[key] = record
                continue
            if seen.image == record.image or seen.source is record.source:
                if augmented is not None and record.image in augmented[1]:
                    continue  # the set's layout: k captions per image (one finding above)
                line = seen.image_location().line
                yield self.at_image(record, f"image `{record.image}` is listed again (first at line {line})")
                continue
            pair = ((seen.image or "").rpartition("/")[0] or ".", record.image.rpartition("/")[0] or ".")
            folders_again.setdefault(pair, []).append((record, seen))
        for (original, again), pairs in folders_again.items():
            count = len(pairs)
            record, seen = pairs[0]
            yield self.at_image(record, f"the config names folder `{original}` twice (again as `{again}`): "
                                f"{count} image{'s are' if count > 1 else ' is'} listed twice and train twice per "
                                f"epoch (`{record.image}` is `{seen.image}`)", images=count)


def _caption_augmentation(rule: Rule, dataset: Dataset) -> tuple[Violation, set[str]] | None:
    """A metadata file that lists (nearly) every image k times, each time with another caption,
    is a caption-augmentation layout, not k accidents: one info for the set, and the images that
    follow the layout (the same k, distinct captions) are not reported row by row."""
    images = [record.image for record in dataset.records]
    distinct = set(images)
    if len(distinct) < 10 or len(distinct) > 0.6 * len(images):
        return None  # (nearly) every image listed once: no layout (the common case, decided in C)
    rows: dict[str, list[str]] = {}
    for record in dataset.records:
        if record.image:
            rows.setdefault(record.image, []).append(" ".join((record.caption or "").lower().split()))
    counts = Counter(len(captions) for captions in rows.values())
    times = counts.most_common(1)[0][0]
    following = {image for image, captions in rows.items() if len(captions) == times and len(set(captions)) == times}
    if times < 2 or len(following) < 0.9 * len(rows):
        return None
    example = next(iter(following))
    violation = rule.at(dataset.location, f"{len(following)} of {len(rows)} images are listed {times} times, each "
                        f"time with a different caption (e.g. `{example}`): a caption-augmentation layout; every row "
                        f"trains, so each image trains {times} times per epoch, once with each caption. Only images "
                        "listed another way are reported", images=len(following), times=times, set_wide=True)
    violation.severity = Severity.INFO
    return violation, following


class PathOutsideRoot(Rule):
    """## What it does
    Reports an image path that is absolute, climbs out of the dataset folder with `..`, or
    resolves outside it through a symbolic link. Such paths are never opened.

    ## Why it matters
    A dataset must be self-contained to be reproducible and shareable: absolute paths break on
    every other machine, and a path out of the root can make tools read (or a fix write) files that
    are not part of the dataset.

    ## Example
    ```csv
    /home/me/Pictures/img_01.png,"cybrpnk, neon city"
    ../other_set/img_02.png,"cybrpnk, rain"
    ```

    ## Fix
    Copy the image into the dataset folder and use a path relative to the metadata file.
    """

    code = "LK007"
    name = "path-outside-root"
    summary = "file_name is absolute or escapes the dataset root (never opened)"
    severity = Severity.ERROR
    shares = "image-files"

    def check_record(self, record: Record, ctx: LintContext) -> Iterable[Violation]:
        if record.image_path is not None or not record.image:
            return ()
        name = record.image
        if name.startswith(("/", "\\")) or (len(name) > 2 and name[1] == ":" and name[2] in "/\\"):
            why = "is an absolute path"
        elif posixpath.normpath(name).startswith(".."):
            why = "climbs out of the dataset folder with `..`"
        else:
            why = "resolves outside the dataset folder through a symbolic link"
        folder = Path(ctx.dataset.root).name
        return (self.at_image(record, f"image path `{name}` {why}; images must live under {folder}/"),)


class MalformedMetadata(_ProblemRule):
    """## What it does
    Reports metadata that cannot be read reliably: a missing `file_name` or caption column, a
    duplicate header, a row with the wrong number of fields, an unclosed quote, a line that is not
    a JSON object, an empty file or a header with no rows.

    ## Why it matters
    HF `datasets`, pandas and trainers each recover from a malformed CSV differently: a stray
    comma shifts a caption into another column, an unclosed quote swallows the rest of the file
    into one caption. What trains is not what you read.

    ## Example
    ```csv
    file_name,text
    img_01.png,cybrpnk, neon city     # 3 fields: the caption needs quotes
    ```

    ## Fix
    Quote captions that contain commas (`"cybrpnk, neon city"`), close quotes, and keep exactly
    the header's number of fields per row.
    """

    code = "LK008"
    name = "malformed-metadata"
    summary = "Bad CSV/JSONL structure: missing columns, wrong field count, unclosed quote, bad JSON"
    severity = Severity.ERROR
    problem_kind = "malformed"
    options = (RuleOption("dataset.caption-column", "the column / key that holds captions"),
               RuleOption("dataset.image-column", "the column / key that holds image paths"))


class CaptionExtensionMismatch(_ProblemRule):
    """## What it does
    Reports caption sidecars whose extension is not the configured `caption-extension`, for
    example `img_01.caption` when the trainer reads `.txt`.

    ## Why it matters
    kohya sd-scripts' `caption_extension` defaults to `.caption` in some scripts and `.txt` in
    others; a mismatch makes the trainer find no captions at all and train every image with an
    empty caption, without an error.

    ## Example
    `img_01.png` + `img_01.caption`, with `caption-extension = ".txt"`.

    ## Fix
    Rename the files (`for f in *.caption; do mv "$f" "${f%.caption}.txt"; done`) or set
    `[dataset] caption-extension` to match your trainer.
    """

    code = "LK009"
    name = "caption-extension-mismatch"
    summary = "Caption sidecars use another extension than the configured one"
    severity = Severity.ERROR
    problem_kind = "extension-mismatch"
    options = (RuleOption("dataset.caption-extension", "extension of caption sidecars (default `.txt`)"),)


class NotTrained(_ProblemRule):
    """## What it does
    Reports images that sit beside a kohya train_data_dir's `N_name` concept folders (in the
    folder itself, or in a folder such as `samples/` that is not an `N_name` one), once per folder.
    lorakit does not lint them as training images.

    ## Why it matters
    kohya sd-scripts trains the images inside `N_name` folders only and skips everything beside
    them without a word: a picture dropped next to the concept folders is never learned, however
    good its caption.

    ## Example
    ```
    train/10_cybrpnk/a.png
    train/new_shot.png        # beside the concept folders: never trained
    ```

    ## Fix
    Move the images into the concept folder they belong to (or into a new `N_name` folder), or out
    of the training folder.
    """

    code = "LK012"
    name = "not-trained"
    summary = "Images beside a kohya set's `N_name` folders, which kohya never trains"
    severity = Severity.WARNING
    problem_kind = "not-trained"


class TrainerConfigMismatch(Rule):
    """## What it does
    Checks a trainer's own dataset config against the data it describes, when you lint the config
    itself: kohya sd-scripts' `dataset_config.toml` and ai-toolkit's YAML job config.
    - kohya: keys kohya does not know (it refuses the whole config), an `image_dir` that does not
      exist, a subset without one, a `caption_extension` that no caption file in its `image_dir`
      has, a `keep_tokens` larger than some captions' tag count while `shuffle_caption` is on (a
      warning); subsets lorakit does not read (fine-tuning `metadata_file`, ControlNet) are named.
    - ai-toolkit: keys it does not read (a warning: it ignores them silently), a `folder_path`
      that does not exist, a `caption_ext` no file has, `[trigger]` in captions with no
      `trigger_word` (ai-toolkit deletes it), images that train with `default_caption` (info).
    - OneTrainer concepts and SimpleTuner data backends: a folder that does not exist, keys the
      trainer does not read (warning), captions not taken from caption files (info), a
      SimpleTuner backend with no `caption_strategy` (its default, `filename`, ignores the caption
      files), OneTrainer's `keep_tags_count` beyond the tags with shuffling on (warning).

    ## Why it matters
    The trainer trusts its config: a wrong extension trains every image with no caption (or only
    the class tokens), a wrong folder trains nothing, and neither says so.

    ## Example
    ```toml
    [[datasets.subsets]]
    image_dir = "train/10_cybrpnk"
    caption_extension = ".caption"   # the files are .txt
    ```

    ## Fix
    Correct the config (or rename the files) so that it describes the data you captioned.
    """

    code = "LK010"
    name = "trainer-config-mismatch"
    summary = "A trainer's dataset config contradicts its data, or has keys the trainer refuses"
    severity = Severity.ERROR

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for problem in dataset.problems_of("dataset-config"):
            yield self.at(problem.location, problem.message)
        for kind, severity in (("dataset-config-warning", Severity.WARNING), ("dataset-config-info", Severity.INFO)):
            for problem in dataset.problems_of(kind):
                violation = self.at(problem.location, problem.message)
                violation.severity = severity
                yield violation


RULES = (
    ImageMissing, CaptionMissing, CaptionEmpty, InvalidEncoding, EncodingHygiene, DuplicateEntry,
    PathOutsideRoot, MalformedMetadata, CaptionExtensionMismatch, TrainerConfigMismatch, CaptionTooLong, NotTrained,
)

plugin = RulePack(RULES)

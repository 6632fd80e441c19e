"""A folder of images with caption sidecars (`img.png` + `img.txt`), kohya `N_name` folders included.

The caption is the file's text minus one trailing line ending (editors add one; trainers strip
it). Sidecars with another known caption extension than the configured one are reported, since
trainers silently train those images with no caption at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from lora_core.config import CONFIG_FILENAME
from lora_core.datasets.model import Dataset, ReadProblem, Record, SourceFile
from lora_core.datasets.reader import (
    IMAGE_EXTENSIONS,
    KOHYA_FOLDER,
    DatasetReader,
    DatasetSettings,
    decode_source,
    encode_source,
    os_error,
    read_small_files,
)
from lora_core.errors import DatasetError
from lora_core.violations import Location

#: Extensions people use for caption sidecars; one of them is configured, the others are suspicious.
CAPTION_EXTENSIONS = (".txt", ".caption", ".tags", ".cap")
#: Text files that sit in dataset folders without being captions.
_NOT_CAPTIONS = re.compile(r"^(readme|license|licence|notice|changelog|requirements|notes?)$", re.I)
_TRAILING_EOL = re.compile(r"(\r\n|\r|\n)\Z")


class SidecarReader(DatasetReader):
    name = "sidecar"
    description = "folder of images with caption sidecar files (kohya `N_name` repeat folders too)"
    priority = -100  # the fallback for any folder

    member_suffixes = frozenset(CAPTION_EXTENSIONS) | IMAGE_EXTENSIONS

    def claims(self, path: Path) -> bool:
        return path.is_dir() or path.suffix.lower() in CAPTION_EXTENSIONS

    def dataset_for(self, path: Path) -> Path | None:
        """A caption beside images, an image beside captions, or the lorakit.toml of a folder of
        images or kohya `N_name` folders stands for the sidecar dataset's root."""
        suffix = path.suffix.lower()
        if suffix in CAPTION_EXTENSIONS:
            return dataset_root_for_sidecar(path) if _any_entry(path.parent, _is_image) else None
        if suffix in IMAGE_EXTENSIONS:
            return dataset_root_for_sidecar(path) if _any_entry(path.resolve().parent, _is_caption) else None
        if path.name == CONFIG_FILENAME:
            folder = path.resolve().parent
            return folder if _any_entry(folder, _is_image) or _any_entry(folder, _is_kohya_folder) else None
        return None

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        root = dataset_root_for_sidecar(path) if path.is_file() else path
        wanted_ext = settings.caption_extension  # matched exactly, as trainers do
        problems: list[ReadProblem] = []
        dataset = Dataset(root=root, path=root, format=self.name, records=[], sources=[],
                          problems=problems, caption_column="", reader=self)
        pending: list[tuple[str, str, str, int | None, str | None]] = []
        # kohya trains the images inside a train_data_dir's `N_name` folders only: beside them (the
        # root itself, a `samples/` folder) nothing is trained, so nothing there is linted as if it were.
        kohya_root = _any_entry(root, _is_kohya_folder)
        for folder_name, rel, images, captions in _walk(root, {*CAPTION_EXTENSIONS, wanted_ext.lower()}):
            folder = Path(folder_name)
            repeats = concept = None
            if kohya_root and not KOHYA_FOLDER.match(rel.split("/", 1)[0]):
                if images:
                    first = sorted(images.values())[0]
                    where = f"`{rel}`" if rel else "the dataset folder"
                    what = (f"`{rel + first}` sits" if len(images) == 1 else
                            f"{len(images)} images in {where} (e.g. `{rel + first}`) sit")
                    them = "it" if len(images) == 1 else "them"
                    problems.append(ReadProblem(
                        "not-trained", Location(folder / first, 1, 1),
                        f"{what} beside the kohya `N_name` folders, where kohya trains nothing: not linted; move "
                        f"{them} into a concept folder to train {them}", image=rel + first))
                continue
            kohya = KOHYA_FOLDER.match(folder.name)
            # Paths as strings in the loop (one caption file an image): a Path costs more than
            # reading the file. SourceFile turns its path into a Path when first asked.
            prefix = folder_name + os.sep
            if kohya:
                repeats, concept = int(kohya.group(1)), kohya.group(2)
            on_disk = dataset.images_on_disk
            no_captions: dict[str, str] = {}
            for stem, image_name in sorted(images.items()):
                image_rel = rel + image_name
                on_disk.add(image_rel)
                found = captions.get(stem, no_captions)
                caption_name = found.get(wanted_ext)
                if caption_name is None:
                    others = [name for ext, name in found.items() if ext != wanted_ext]
                    if others:
                        problems.append(
                            ReadProblem(
                                "extension-mismatch", Location(folder / others[0]),
                                f"caption file has extension `{Path(others[0]).suffix}` but "
                                f"`caption-extension` is `{settings.caption_extension}`: trainers "
                                f"configured for `{settings.caption_extension}` train `{image_rel}` "
                                "with no caption",
                                image=image_rel,
                            )
                        )
                    continue  # no caption: LK002 reports images_on_disk minus records
                pending.append((prefix + caption_name, image_rel, prefix + image_name, repeats, concept))
            for stem, by_ext in sorted(captions.items()):
                if stem in images or _NOT_CAPTIONS.match(stem):
                    continue
                for ext, name in by_ext.items():
                    if ext == wanted_ext:
                        problems.append(
                            ReadProblem("orphan-caption", Location(folder / name),
                                        f"caption file `{rel + name}` has no image beside it "
                                        f"(looked for {stem}.png/.jpg/.webp/...)",
                                        image=rel + stem)
                        )
        # The caption files are read in one batch after the walk (in two processes for a big
        # dataset: see read_small_files), then turned into records in order.
        contents = read_small_files([item[0] for item in pending])
        records, sources = dataset.records, dataset.sources
        odd = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
        plain = SourceFile.plain
        for (caption_path, image_rel, image_path, repeats, concept), data in zip(pending, contents):
            # Inline, one iteration a caption file. The common case is decided by two C-level
            # tests and a decode: plain UTF-8 with "\n" endings.
            text = None
            if b"\r" not in data and not data.startswith(odd):
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            if text is None:  # a BOM, CR endings, bytes that are not UTF-8: the decoder notes each
                source = decode_source(caption_path, data, problems)
                text = source.text
                eol = _TRAILING_EOL.search(text)
                end = eol.start() if eol else len(text)
            else:
                source = plain(caption_path, text)
                end = len(text) - 1 if text.endswith("\n") else len(text)
            sources.append(source)
            caption = text[:end]
            # Positional: index, image, caption, source, caption_span, image_span, quoted,
            # image_path, image_exists, extras, concept, repeats, original_caption
            records.append(Record(len(records), image_rel, caption, source, (0, end), None, False, image_path, True,
                                  None, concept, repeats, caption))
        if not dataset.images_on_disk and not dataset.records and not problems:
            raise DatasetError(
                f"{root}: no images and no caption files found (expected metadata.csv, metadata.jsonl, "
                "or images with caption sidecars)"
            )
        return dataset

    def render(self, dataset: Dataset, file_changes: dict[Path, set[str]]) -> dict[Path, bytes]:
        out: dict[Path, bytes] = {}
        for record in dataset.records:
            source = record.source
            changes = file_changes.get(source.path, set())
            if not record.changed and not changes:
                continue
            start, end = record.caption_span or (0, len(source.text))
            text = source.text[:start] + (record.caption or "") + source.text[end:]
            out[source.path] = encode_source(source, text, changes)
        return out


def dataset_root_for_sidecar(caption_file: Path) -> Path:
    """The dataset a single sidecar belongs to: its folder, or the parent of a kohya `N_name` folder."""
    folder = caption_file.resolve().parent
    return folder.parent if KOHYA_FOLDER.match(folder.name) else folder


def _walk(root: Path, caption_exts: set[str]):
    """Yield (folder path as a str, dataset-relative prefix, {stem: image name},
    {stem: {ext: caption name}}). A caption that is not a regular file (a FIFO named `x.txt`)
    is refused when read, with a clear error; it never blocks."""
    stack = [(os.fspath(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            names = sorted(os.listdir(folder))  # names only: a DirEntry per file costs more
        except OSError as exc:
            raise os_error(Path(folder), exc, "list folder") from None
        images: dict[str, str] = {}
        captions: dict[str, dict[str, str]] = {}
        folders: list[str] = []
        for name in names:
            if name[0] == ".":
                continue
            stem, dot, raw = name.rpartition(".")
            ext = "." + raw.lower() if dot else ""
            if ext in IMAGE_EXTENSIONS and stem:
                images[stem] = name
            elif ext in caption_exts and stem:
                # Keyed by the extension as written: trainers look for `img.txt` exactly (on Linux
                # `img.TXT` is not it), so another case is reported as another extension.
                captions.setdefault(stem, {})["." + raw] = name  # read as a regular file, or refused
            else:
                folders.append(name)  # maybe a folder: one stat for these few names only
        for name in reversed(folders):  # popped in name order
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                stack.append((path, f"{rel}{name}/"))
        yield folder, rel, images, captions


def _is_image(entry: os.DirEntry[str]) -> bool:
    return os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS


def _is_caption(entry: os.DirEntry[str]) -> bool:
    return os.path.splitext(entry.name)[1].lower() in CAPTION_EXTENSIONS


def _is_kohya_folder(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir() and KOHYA_FOLDER.match(entry.name) is not None


def _any_entry(folder: Path, wanted: Callable[[os.DirEntry[str]], bool]) -> bool:
    try:
        with os.scandir(folder) as listing:
            return any(wanted(e) for e in listing)
    except OSError:
        return False

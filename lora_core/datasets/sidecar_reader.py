"""A folder of images with caption sidecars (`img.png` + `img.txt`), kohya `N_name` folders included.

The caption is the file's text minus one trailing line ending (editors add one; trainers strip
it). Sidecars with another known caption extension than the configured one are reported, since
trainers silently train those images with no caption at all.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lora_core.datasets.model import Dataset, ReadProblem, Record
from lora_core.datasets.reader import (
    IMAGE_EXTENSIONS,
    KOHYA_FOLDER,
    DatasetReader,
    DatasetSettings,
    decode_source,
    encode_source,
    os_error,
    read_bytes,
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

    def claims(self, path: Path) -> bool:
        return path.is_dir() or path.suffix.lower() in CAPTION_EXTENSIONS

    def read(self, path: Path, settings: DatasetSettings) -> Dataset:
        root = dataset_root_for_sidecar(path) if path.is_file() else path
        wanted_ext = settings.caption_extension.lower()
        problems: list[ReadProblem] = []
        dataset = Dataset(root=root, path=root, format=self.name, records=[], sources=[],
                          problems=problems, caption_column="", reader=self)
        for folder, rel, images, captions in _walk(root, {*CAPTION_EXTENSIONS, wanted_ext}):
            repeats = concept = None
            kohya = KOHYA_FOLDER.match(folder.name)
            if kohya:
                repeats, concept = int(kohya.group(1)), kohya.group(2)
            for stem, image_name in sorted(images.items()):
                image_rel = rel + image_name
                dataset.images_on_disk.add(image_rel)
                found = captions.get(stem, {})
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
                dataset.records.append(
                    self._record(folder / caption_name, image_rel, folder / image_name, len(dataset.records),
                                 repeats, concept, problems, dataset)
                )
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
        if not dataset.images_on_disk and not dataset.records and not problems:
            raise DatasetError(
                f"{root}: no images and no caption files found (expected metadata.csv, metadata.jsonl, "
                "or images with caption sidecars)"
            )
        return dataset

    def _record(self, caption_path, image_rel, image_path, index, repeats, concept, problems, dataset):
        source = decode_source(caption_path, read_bytes(caption_path), problems)
        dataset.sources.append(source)
        text = source.text
        eol = _TRAILING_EOL.search(text)
        end = eol.start() if eol else len(text)
        caption = text[:end]
        return Record(
            index=index, image=image_rel, caption=caption, source=source, caption_span=(0, end),
            image_path=str(image_path), image_exists=True, repeats=repeats, concept=concept,
            original_caption=caption,
        )

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
    """Yield (folder, dataset-relative prefix, {stem: image name}, {stem: {ext: caption name}})."""
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise os_error(folder, exc, "list folder") from None
        images: dict[str, str] = {}
        captions: dict[str, dict[str, str]] = {}
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), f"{rel}{name}/"))
                continue
            stem, ext = os.path.splitext(name)
            ext = ext.lower()
            if ext in IMAGE_EXTENSIONS:
                images[stem] = name
            elif ext in caption_exts:
                captions.setdefault(stem, {})[ext] = name
        yield folder, rel, images, captions

"""The images `lorakit caption` works on."""

from __future__ import annotations

from pathlib import Path

from lora_core.datasets.reader import image_inventory
from lora_core.errors import DatasetError
from lora_core.protocols import ImageItem

__all__ = ["ImageItem", "list_images"]


def list_images(folder: Path) -> list[ImageItem]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of images")
    names, _ = image_inventory(folder)
    if not names:
        raise DatasetError(f"{folder}: no images found (.png, .jpg, .jpeg, .webp, ...)")
    return [ImageItem(name, folder / name, folder) for name in sorted(names)]

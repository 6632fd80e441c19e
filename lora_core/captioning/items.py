"""The images `lorakit caption` works on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.datasets.reader import image_inventory
from lora_core.errors import DatasetError


@dataclass(frozen=True)
class ImageItem:
    """One image to caption: its name relative to the captioned folder, its path, that folder."""

    name: str
    path: Path
    root: Path

    def load(self) -> Any:
        """The image as an RGB PIL image (Pillow is needed only by model captioners)."""
        from PIL import Image, ImageOps

        with Image.open(self.path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")


def list_images(folder: Path) -> list[ImageItem]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder of images")
    names, _ = image_inventory(folder)
    if not names:
        raise DatasetError(f"{folder}: no images found (.png, .jpg, .jpeg, .webp, ...)")
    return [ImageItem(name, folder / name, folder) for name in sorted(names)]

"""Thumbnails and full images for `lorakit review`, served by record index only (never by a path
from the request), each read only when it resolves inside the dataset."""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

from lora_core.atomic import inside_folder

__all__ = ["ImageStore"]

THUMB_SIDE = 224
MAX_CACHED = 4096  # about 40 MB of JPEG thumbnails


class ImageStore:
    """JPEG thumbnails made on first request and kept in memory (least recently used dropped)."""

    def __init__(self, root: Path, max_pixels: int = 64_000_000) -> None:
        self.root = Path(os.path.realpath(root))
        self.max_pixels = max_pixels
        self._thumbs: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def inside(self, path: str | None) -> Path | None:
        """The image's real path when it is a regular file inside the dataset (a link out, `..`, a
        FIFO or a missing file: None)."""
        if not path or not inside_folder(path, self.root):
            return None
        real = os.path.realpath(path)
        return Path(real) if os.path.isfile(real) else None

    def thumbnail(self, path: str | None) -> bytes | None:
        real = self.inside(path)
        if real is None:
            return None
        try:
            info = real.stat()
        except OSError:
            return None
        key = (str(real), info.st_size, info.st_mtime_ns)
        with self._lock:
            if key in self._thumbs:
                self._thumbs.move_to_end(key)
                return self._thumbs[key]
        data = self._render(real)
        if data is not None:
            with self._lock:
                self._thumbs[key] = data
                while len(self._thumbs) > MAX_CACHED:
                    self._thumbs.popitem(last=False)
        return data

    def _render(self, real: Path) -> bytes | None:
        from PIL import Image, ImageOps

        try:
            with Image.open(real) as image:
                if image.width * image.height > self.max_pixels:
                    return None  # a decompression bomb is not decoded for a thumbnail either
                image.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))  # JPEG: decode at a reduced size
                picture = ImageOps.exif_transpose(image)
                picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
                if picture.mode in ("RGBA", "LA", "P"):
                    picture = picture.convert("RGBA")
                    canvas = Image.new("RGB", picture.size, (255, 255, 255))
                    canvas.paste(picture, mask=picture.getchannel("A"))
                    picture = canvas
                buffer = io.BytesIO()
                picture.convert("RGB").save(buffer, format="JPEG", quality=82)
                return buffer.getvalue()
        except Exception:  # any decoder error: the page shows "no preview"
            return None

    def full(self, path: str | None) -> tuple[bytes, str] | None:
        """The image file's bytes and media type, for the detail view (images only, by suffix)."""
        real = self.inside(path)
        types = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                 ".gif": "image/gif", ".bmp": "image/bmp"}
        kind = types.get(real.suffix.lower()) if real is not None else None
        if real is None or kind is None:
            return None
        try:
            return real.read_bytes(), kind
        except OSError:
            return None

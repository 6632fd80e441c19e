"""Helpers for testing lorakit and lorakit plugins (importable by plugin authors' test suites).

`lora_core.testing.tiny_models` builds tiny random BLIP, BLIP-2, CLIP, CoCa and Stable Diffusion
models saved like real checkpoints (it imports torch when a builder is called).

    from lora_core.testing import make_csv_dataset, registry_with
    folder = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, neon city")])
    result = lora_core.lint(folder, registry=registry_with(MyRulesPlugin()))
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lora_core.plugins import Registry, load_plugins

__all__ = ["csv_field", "make_csv_dataset", "make_sidecar_dataset", "photo_array", "photo_png_bytes", "png_bytes",
           "registry_with", "write_photo", "write_png", "write_pngs"]


def png_bytes(width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 40, 160)) -> bytes:
    """A valid RGB PNG of one colour, made with the standard library only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(color) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def write_png(path: Path, width: int = 8, height: int = 8, color: tuple[int, int, int] = (200, 40, 160)) -> Path:
    """Write a PNG of one colour (creating its folder) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height, color))
    return path


def write_pngs(folder: Path, count: int, prefix: str = "img_") -> Path:
    """`count` small PNGs of different sizes and colours (captioner tests): prefix0.png, ..."""
    for i in range(count):
        write_png(folder / f"{prefix}{i}.png", 48 + 8 * i, 40, ((40 * i) % 256, 120 + 10 * i, 200 - 10 * i))
    return folder


def photo_png_bytes(seed: str, size: int = 512) -> bytes:
    """A sharp, textured RGB PNG, different for every seed: passes the image rules (LK6xx) as a
    real training photo would (large enough, not blurry, not a duplicate of another seed)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(photo_array(seed, size), "RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def photo_array(seed: str, size: int = 512) -> Any:
    """The pixels of `photo_png_bytes` as a (size, size, 3) uint8 numpy array."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle, frequency = digest[0] / 255 * np.pi, 4 + digest[1] % 12
    wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * frequency * 2 * np.pi)
    ramp = x * (digest[4] / 255) + y * (1 - digest[4] / 255)
    channels = [digest[5 + c] * 0.5 + (30 + digest[8 + c] % 40) * wave + 50 * ramp for c in range(3)]
    # A few solid shapes at seeded places: like objects in a photo, they give every seed its own
    # layout of edges (what perceptual hashes compare).
    for _ in range(7):
        cx, cy, rx, ry = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)
        inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 if rng.random() < 0.5 else \
            (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
        colour = rng.uniform(0, 255, 3)
        for c in range(3):
            channels[c] = np.where(inside, colour[c] + 20 * wave, channels[c])
    # Fine detail, as real photos have (a sharp image has edges at every scale): a 6-pixel weave.
    weave = 14 * (np.sign(np.sin(x * size * np.pi / 3)) + np.sign(np.sin(y * size * np.pi / 3)))
    channels = [channel + weave for channel in channels]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def write_photo(path: Path, seed: str | None = None, size: int = 512) -> Path:
    """Write a photo-like PNG (textures and edges, deterministic per seed) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo_png_bytes(seed if seed is not None else path.name, size))
    return path


def csv_field(value: str) -> str:
    """A value quoted for a CSV cell when it needs quoting."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


def make_csv_dataset(
    folder: Path,
    rows: Iterable[Sequence[str]],
    header: Sequence[str] = ("file_name", "text"),
    images: bool = True,
    newline: str = "\n",
) -> Path:
    """Write folder/metadata.csv (fields quoted only when needed) and, by default, a PNG for each
    row's first column (a distinct, sharp 512 px picture: `write_photo`). Returns the metadata
    file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [list(r) for r in rows]
    lines = [",".join(csv_field(h) for h in header)] + [",".join(csv_field(v) for v in row) for row in rows]
    path = folder / "metadata.csv"
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    if images:
        for row in rows:
            if row and row[0] and not row[0].startswith(("/", "..")):
                write_photo(folder / row[0])
    return path


def make_sidecar_dataset(folder: Path, captions: dict[str, str], extension: str = ".txt") -> Path:
    """Write image + caption sidecar pairs: {"10_cat/a.png": "a cat"}."""
    for image, caption in captions.items():
        image_path = write_photo(folder / image)
        image_path.with_suffix(extension).write_text(caption + "\n", encoding="utf-8")
    return folder


def registry_with(*plugins: object, builtins: bool = True, names: Sequence[str] | None = None) -> Registry:
    """A fresh Registry: lorakit's built-ins (unless builtins=False) plus in-memory plugins."""
    names = list(names) if names is not None else [f"test-plugin-{i}" for i in range(len(plugins))]
    return load_plugins(entry_points=builtins, extra=list(zip(names, plugins)), builtin_only=builtins)

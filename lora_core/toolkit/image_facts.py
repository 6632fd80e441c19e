"""Facts about image files, for the image rules (LK6xx) and `lorakit stats`: size, mode and EXIF
orientation from the header; with `pixels`, a full decode (which is how truncated files show),
blur (the blur effect of the sharpest part, at 512 px; and the variance of the Laplacian for
the legacy `blur-threshold`), a content hash and two perceptual hashes (dHash, pHash).

`collect` analyses a dataset's images in a process pool when there are many, and caches the
facts in `<dataset>/.lorakit_cache/images-v4.json` keyed by path, size and modification time.
Pillow and numpy are imported when an image is analysed.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lora_core import progress
from lora_core.atomic import atomic_write_bytes
from lora_core.datasets.model import Dataset

__all__ = [
    "ANALYSIS_SIDE",
    "BLUR_BLOCK",
    "BLUR_MIN_DETAIL",
    "BLUR_RADIUS",
    "BLUR_TOP_SHARE",
    "CACHE_FILE",
    "CACHE_FOLDER",
    "DEFAULT_MAX_PIXELS",
    "FIELDS",
    "POOL_MIN_IMAGES",
    "ImageFacts",
    "analyse",
    "blur_effect",
    "collect",
    "make_cache_folder",
    "phash",
    "thumbnail",
    "write_cache",
]

DEFAULT_MAX_PIXELS = 89_478_485

CACHE_FOLDER = ".lorakit_cache"
CACHE_FILE = "images-v4.json"  # v3: blur effect and pHash added; v4: blur at the sharper of 512/1024 px
ANALYSIS_SIDE = 512  # blur is measured on the image scaled to this longest side
POOL_MIN_IMAGES = 32


def analyse(path: str, pixels: bool, max_pixels: int) -> dict[str, Any]:
    """Facts about one image file (module level: runs in pool workers)."""
    from PIL import Image, UnidentifiedImageError

    facts: dict[str, Any] = {"error": None, "pixels": pixels}
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # the header is safe to read; max-pixels decides below, with a clear message
    try:
        with Image.open(path) as image:
            width, height = image.size
            facts.update(width=width, height=height, format=image.format, mode=image.mode,
                         transparency="transparency" in image.info, orientation=1)
            if width * height > max_pixels:
                facts["error"] = f"{width}x{height} = {width * height:,} pixels, over max-pixels: not decoded " \
                                 "(a decompression bomb, or simply too large to train on)"
                return facts
            facts["orientation"] = _orientation(image)
            if not pixels:
                return facts
            if image.format == "JPEG":
                image.draft("RGB", (ANALYSIS_SIDE, ANALYSIS_SIDE))  # decode at a reduced scale: much faster
            image.load()  # the whole stream: a truncated or corrupt file fails here
            facts.update(_pixel_facts(image))
    except Image.DecompressionBombError as exc:
        facts["error"] = f"decompression bomb refused by Pillow ({exc})"
    except (UnidentifiedImageError, SyntaxError):
        facts["error"] = "not an image Pillow can read"
    except (OSError, ValueError, EOFError) as exc:
        facts["error"] = f"cannot be decoded: {str(exc).splitlines()[0][:120] or type(exc).__name__}"
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    return facts


def _orientation(image: Any) -> int:
    """The EXIF orientation, from the header only (PNG keeps EXIF anywhere in the file: reading
    it could decode the whole image, so only an eXIf chunk seen before the pixels counts)."""
    if image.format == "PNG":
        if not image.info.get("exif"):
            return 1
        from PIL import Image

        exif = Image.Exif()
        exif.load(image.info["exif"])
        return int(exif.get(0x0112, 1) or 1)
    return int(image.getexif().get(0x0112, 1) or 1)


def _pixel_facts(image: Any) -> dict[str, Any]:
    import hashlib  # here, as numpy and Pillow: importing the module (every lint does) stays cheap

    import numpy as np
    from PIL import Image

    content = hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()[:32]
    grey = image.convert("L")
    if max(grey.size) > ANALYSIS_SIDE:
        scale = ANALYSIS_SIDE / max(grey.size)
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.uint8)
    laplacian = None
    if pixels.shape[0] >= 3 and pixels.shape[1] >= 3:
        array = pixels.astype(np.float32)
        edges = (4 * array[1:-1, 1:-1] - array[:-2, 1:-1] - array[2:, 1:-1] - array[1:-1, :-2] - array[1:-1, 2:])
        laplacian = float(edges.var())
    # Through a 64x64 box-filtered thumbnail, then 9x8 boxes: re-encoding or resizing flips few bits
    small = np.asarray(grey.resize((64, 64), Image.Resampling.BOX).resize((9, 8), Image.Resampling.BOX),
                       dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    dhash = int("".join("1" if b else "0" for b in bits), 2)
    # dHash sees only gradients (two flat images of different colours hash alike): a 4x4 colour
    # thumbnail must agree too
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    colours = np.asarray(rgb.resize((4, 4), Image.Resampling.BOX), dtype=np.uint8)
    return {"content": content, "blur": _sharpest_scale_blur(image, pixels), "laplacian": laplacian, "dhash": dhash,
            "phash": phash(grey), "colours": colours.flatten().tolist()}


FINE_SIDE = 1024  # a large image soft at 512 px is measured again here: sharp detail there is sharp
FINE_CHECK_FROM = 0.3  # ... only when the 512 px measure is at least this (most images never are)


def _sharpest_scale_blur(image: Any, pixels: Any) -> float | None:
    """The blur effect at 512 px, or at up to 1024 px when that is sharper: a portrait whose eyes
    are sharp in a soft, high-key picture reads 0.40-0.42 at 512 px and 0.25-0.31 at 1024 px; a
    blurred or upscaled picture stays blurry at both (0.56-0.76 on bench_image_quality's kinds)."""
    import numpy as np
    from PIL import Image

    coarse = blur_effect(pixels)
    if coarse is None or coarse < FINE_CHECK_FROM or max(image.size) <= ANALYSIS_SIDE:
        return coarse
    grey = image.convert("L")
    if max(grey.size) > FINE_SIDE:
        scale = FINE_SIDE / max(grey.size)
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BILINEAR)
    fine = blur_effect(np.asarray(grey, dtype=np.uint8))
    return coarse if fine is None else min(coarse, fine)


BLUR_RADIUS = 4  # the re-blur is 9 pixels long (at 512 px): the blur LK604 looks for is about this wide
BLUR_BLOCK = 32  # tiles are 2x2 blocks (64 px), overlapping by one block
BLUR_MIN_DETAIL = 0.5  # grey levels of change per pixel: tiles with less are flat, and not judged
BLUR_TOP_SHARE = 0.1  # the most detailed tenth of the tiles is where the subject is


def blur_effect(grey: Any) -> float | None:
    """How blurry the sharpest part of a picture is, from 0 (crisp) to 1 (no detail left), or None
    when nothing in it has detail to judge (a flat or smooth image).

    The measure is Crete-Roffet's blur effect (re-blur the image; a sharp picture changes a lot, a
    blurred one hardly at all), taken in four directions (rows, columns, both diagonals, so motion
    blur in any direction shows), on 64 px tiles. Per direction, only the tenth of the tiles with
    the most detail counts, and its sharpest tile: a subject in focus in front of a soft
    background is sharp, and flat areas (illustrations, logos, skies) are not judged at all, since
    the measure is a ratio of edge contrast, not an amount of it. The picture is as blurry as its
    blurriest direction: a horizontal camera shake leaves vertical edges crisp."""
    import numpy as np

    image = np.asarray(grey, dtype=np.int16)
    height, width = image.shape
    r = BLUR_RADIUS
    if min(height, width) < BLUR_BLOCK + 2 * r + 2:
        return None
    padded = np.pad(image, r, mode="edge")
    length = 2 * r + 1
    rows = slice(r, height - r - 1)
    shape = (height - 2 * r - 1, width - 2 * r - 1)
    summed = np.empty((height, width), np.int16)
    change, kept = np.empty(shape, np.int16), np.empty(shape, np.int16)  # reused: no temporaries
    worst = None
    for dy, dx in ((1, 0), (0, 1), (1, 1), (1, -1)):
        # the sum of `length` pixels along (dy, dx) around each pixel: a box blur, times length
        np.copyto(summed, padded[r - r * dy: r - r * dy + height, r - r * dx: r - r * dx + width])
        for t in range(1 - r, r + 1):
            summed += padded[r + t * dy: r + t * dy + height, r + t * dx: r + t * dx + width]
        cols = slice(r, width - r - 1) if dx >= 0 else slice(r + 1, width - r)
        ahead = (slice(r + dy, height - r - 1 + dy), slice(cols.start + dx, cols.stop + dx))
        np.subtract(image[ahead], image[rows, cols], out=change)
        np.abs(change, out=change)
        np.subtract(summed[ahead], summed[rows, cols], out=kept)
        np.abs(kept, out=kept)
        np.subtract(change * np.int16(length), kept, out=kept)  # the variation the re-blur removes
        np.maximum(kept, 0, out=kept)
        tile_change, tile_kept = (_tile_sums(values, BLUR_BLOCK) for values in (change, kept))
        area = BLUR_BLOCK * BLUR_BLOCK * (4 if tile_change.size > 1 else 1)
        detailed = tile_change >= BLUR_MIN_DETAIL * area
        if not detailed.any():
            continue
        tile_change, tile_kept = tile_change[detailed], tile_kept[detailed]
        top = np.argsort(-tile_change, kind="stable")[:max(2, len(tile_change) // round(1 / BLUR_TOP_SHARE))]
        score = float((1 - tile_kept[top] / (length * tile_change[top])).min())
        worst = score if worst is None else max(worst, score)
    return None if worst is None else round(worst, 4)


def _tile_sums(values: Any, block: int) -> Any:
    """Sums over 2x2-block tiles that overlap by one block (one tile when there is a single block)."""
    import numpy as np

    rows, cols = values.shape[0] // block, values.shape[1] // block
    strips = values[:rows * block, :cols * block].reshape(rows * block, cols, block).sum(axis=2, dtype=np.int32)
    blocks = strips.reshape(rows, block, cols).sum(axis=1, dtype=np.int64)
    if rows >= 2 and cols >= 2:
        blocks = blocks[:-1, :-1] + blocks[1:, :-1] + blocks[:-1, 1:] + blocks[1:, 1:]
    return blocks.ravel()


_DCT_SIZE = 32


def phash(grey: Any) -> int:
    """The 64-bit perceptual hash (imagehash's recipe): the 8x8 lowest frequencies of the DCT of a
    32x32 thumbnail, each above or below their median."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(grey.resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.BOX), dtype=np.float64)
    n = np.arange(_DCT_SIZE)
    basis = np.cos(np.pi * (2 * n[None, :] + 1) * n[:8, None] / (2 * _DCT_SIZE))  # 8 x 32
    low = (basis @ pixels @ basis.T).flatten()
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def thumbnail(path: str, side: int = 64) -> Any:
    """A `side` x `side` grey thumbnail (float32) of an image file, for the duplicate check's
    finer comparison; None when it cannot be decoded."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (side * 4, side * 4))
            grey = image.convert("L")
            if max(grey.size) > 4 * side:  # a cheap first step: the box filter below does the averaging
                grey.thumbnail((4 * side, 4 * side), Image.Resampling.BILINEAR)
            return np.asarray(grey.resize((side, side), Image.Resampling.BOX), dtype=np.float32)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


FIELDS = ("error", "pixels", "width", "height", "format", "mode", "transparency", "orientation", "content", "blur",
          "laplacian", "dhash", "phash", "colours")
_INDEX = {name: i + 2 for i, name in enumerate(FIELDS)}  # a row starts with the file's size and mtime


class ImageFacts(Mapping[str, Any]):
    """One image's facts as a read-only mapping over a compact row (the cache file's own list:
    [size, mtime_ns, *FIELDS], absent facts None), so 100,000 cached images cost a list each,
    not a dict each. `colours` is kept as hex and read back as a list of 0-255 values."""

    __slots__ = ("row",)

    def __init__(self, row: list[Any]):
        self.row = row

    @classmethod
    def of(cls, stamp: list[int], facts: dict[str, Any]) -> ImageFacts:
        colours = facts.get("colours")
        values = {**facts, "colours": bytes(colours).hex() if colours is not None else None}
        return cls([stamp[0], stamp[1], *(values.get(name) for name in FIELDS)])

    def __getitem__(self, key: str) -> Any:
        index = _INDEX.get(key)
        value = self.row[index] if index is not None and index < len(self.row) else None
        if value is None:
            raise KeyError(key)
        return list(bytes.fromhex(value)) if key == "colours" else value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    @property
    def stamp(self) -> list[int]:
        """[size, mtime_ns] of the file the facts were taken from (its cache key's check)."""
        return [self.row[0], self.row[1]]

    def __contains__(self, key: object) -> bool:
        index = _INDEX.get(key) if isinstance(key, str) else None
        return index is not None and index < len(self.row) and self.row[index] is not None

    def __iter__(self) -> Iterator[str]:
        return (name for name in FIELDS if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def make_cache_folder(folder: Path) -> Path:
    """The dataset's `.lorakit_cache/`, with a `.gitignore` that keeps it out of version control
    (datasets are often git repositories: the cache must never show up as a change). A cache
    folder that is a link, or holds a `.gitignore` that is one (dangling or not), is not written
    through: OSError, and the lint runs uncached."""
    if os.path.islink(folder) or (os.path.lexists(folder) and not os.path.isdir(folder)):
        raise OSError(f"{folder} is not a folder of the dataset")
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if os.path.islink(ignore):
        raise OSError(f"{ignore} is a link")
    if not os.path.lexists(ignore):
        ignore.write_text("# written by lorakit: this folder is a cache\n*\n", encoding="utf-8")
    return folder


#: A cache file larger than this is not read (a damaged or planted one; 100,000 images take ~20 MB).
MAX_CACHE_BYTES = 256 * 1024 * 1024


def read_cache(path: Path) -> Any:
    """A cache document of the dataset's `.lorakit_cache/` as lorakit wrote it on this machine, or
    None: a missing, linked, special (a FIFO), oversized, damaged, unsigned or foreign file is
    ignored (and rebuilt by the next write). The signature is a keyed hash (the key is this machine
    and user's, never in the dataset), so a cache shipped with a dataset cannot plant results."""
    import stat

    try:
        folder = path.parent
        if os.path.islink(folder) or os.path.islink(path):
            return None
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CACHE_BYTES:
            return None
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CACHE_BYTES + 1)
        document = json.loads(raw)
    except (OSError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("signature"), str):
        return None
    body = document.get("body")
    if not hmac.compare_digest(document["signature"], _signature(body)):
        return None
    return body


def _signature(body: Any) -> str:
    try:
        data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return ""
    return hmac.new(_cache_key_secret(), data, hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=1)
def _cache_key_secret() -> bytes:
    """This machine and user: what a dataset's author cannot know or ship."""
    parts = [str(os.getuid()) if hasattr(os, "getuid") else "", os.path.expanduser("~"), CACHE_FILE]
    for name in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(name, "rb") as handle:
                parts.append(handle.read(64).decode("ascii", "replace").strip())
            break
        except OSError:
            continue
    import platform

    parts.append(platform.node())
    return hashlib.sha256("\0".join(parts).encode("utf-8")).digest()


def _cache_path(dataset: Dataset) -> Path:
    return Path(dataset.root) / CACHE_FOLDER / CACHE_FILE


def _load_cache(path: Path, max_pixels: int) -> dict[str, list[Any]]:
    """{key: row} from the cache file, or nothing when it is missing, damaged or was written with
    another max-pixels (the facts would differ)."""
    data = read_cache(path)
    if not isinstance(data, dict) or data.get("fields") != list(FIELDS) or data.get("max_pixels") != max_pixels:
        return {}
    rows = data.get("rows")
    return rows if isinstance(rows, dict) else {}


def _cache_key(root: str, path: str) -> str:
    """Paths inside the dataset are cached relative to it (shorter, and the cache survives a move)."""
    return path[len(root):] if path.startswith(root) else path


def _workers(setting: int, count: int) -> int:
    if count < POOL_MIN_IMAGES or threading.active_count() > 1:
        return 1
    return setting or min(8, os.cpu_count() or 1)


def _same_files(todo: list[tuple[str, str, list[int]]], inodes: dict[str, tuple[int, int]]) -> dict[str, str]:
    """{path: an earlier path with the same bytes} among files to analyse. Only files whose size
    another file shares are read and hashed (distinct photos seldom share a byte count; copies
    always do), and hard links are known by their inode (`inodes`: from collect's stat) without
    reading."""
    import hashlib

    by_size: dict[int, list[str]] = {}
    for _, path, stamp in todo:
        by_size.setdefault(stamp[0], []).append(path)
    same: dict[str, str] = {}
    for paths in by_size.values():
        if len(paths) < 2:
            continue
        first_with: dict[Any, str] = {}
        for path in paths:
            try:
                inode = ("inode", *inodes[path])
                if inode in first_with:
                    if first_with[inode] != path:  # one path named twice is analysed once, not dropped
                        same[path] = first_with[inode]
                    continue
                with open(path, "rb") as handle:
                    digest = ("bytes", hashlib.blake2b(handle.read()).hexdigest())
            except (OSError, ValueError):
                continue
            original = first_with.setdefault(digest, path)
            first_with.setdefault(inode, original)
            if original != path:
                same[path] = original
    return same


def collect(dataset: Dataset, pixels: bool, settings: dict[str, Any] | None = None) -> dict[str, Mapping[str, Any]]:
    """Facts for every existing image of the dataset, by image name (from the cache where the
    file is unchanged). `settings`: the `[images]` section (max-pixels, cache, workers)."""
    settings = settings or {}
    records = [r for r in dataset.records if r.image_path and r.image_exists]
    cache_on = bool(settings.get("cache", True))
    cache_file = _cache_path(dataset)
    max_pixels = int(settings.get("max-pixels", DEFAULT_MAX_PIXELS))
    cache = _load_cache(cache_file, max_pixels) if cache_on else {}
    root = os.path.join(str(dataset.root), "")
    pixels_at = _INDEX["pixels"]
    results: dict[str, Mapping[str, Any]] = {}
    todo: list[tuple[str, str, list[int]]] = []
    inodes: dict[str, tuple[int, int]] = {}
    queued: set[str] = set()
    for record in records:
        # An image listed twice (two rows, or one folder named twice by a trainer config) is
        # analysed once: its facts are the same for both rows.
        if record.image is None or record.image in results or record.image in queued:
            continue
        queued.add(record.image)
        path = str(record.image_path)
        try:
            stat = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL in the name (no such file can exist)
            continue
        row = cache.get(_cache_key(root, path))
        if isinstance(row, list) and len(row) == len(FIELDS) + 2 and row[0] == stat.st_size \
                and row[1] == stat.st_mtime_ns and (row[pixels_at] or not pixels):
            results[record.image] = ImageFacts(row)
        else:
            todo.append((record.image, path, [stat.st_size, stat.st_mtime_ns]))
            inodes[path] = (stat.st_dev, stat.st_ino)
    same_file = _same_files(todo, inodes)  # copies are analysed once: a folder of 10,000 placeholders decodes one
    distinct = [path for _, path, _ in todo if path not in same_file]
    workers = _workers(int(settings.get("workers", 0)), len(distinct))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from lora_core.engine import die_with_parent

        # die_with_parent: a lint killed while reading images (kill -9, the OOM killer, a Ctrl-C'd
        # `--watch` run) must not leave its decoders alive holding its stdout open.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=die_with_parent) as pool:
            analysed = []
            for found in pool.map(analyse, distinct, [pixels] * len(distinct), [max_pixels] * len(distinct),
                                  chunksize=max(1, len(distinct) // (workers * 8))):
                analysed.append(found)
                progress.step("reading images", len(analysed), len(distinct))
    else:
        analysed = []
        for path in distinct:
            analysed.append(analyse(path, pixels, max_pixels))
            progress.step("reading images", len(analysed), len(distinct))
    by_path = dict(zip(distinct, analysed))
    computed = [by_path[same_file.get(path, path)] for _, path, _ in todo]
    for (image, path, stamp), found in zip(todo, computed):
        facts = ImageFacts.of(stamp, found)
        results[image] = facts
        cache[_cache_key(root, path)] = facts.row
    if cache_on and todo:
        write_cache(cache_file, {"fields": list(FIELDS), "max_pixels": max_pixels, "rows": cache})
    return results


def write_cache(path: Path, document: Any) -> None:
    """Write a cache file of the dataset's `.lorakit_cache/` atomically; a read-only dataset
    folder only makes the next lint slower."""
    try:
        make_cache_folder(path.parent)
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
            return  # a link or a FIFO where the cache goes: never written through
        signed = {"signature": _signature(document), "body": document}
        atomic_write_bytes(path, json.dumps(signed, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    except (OSError, TypeError, ValueError):
        pass



"""Facts about image files, for the image rules (LK6xx) and `lorakit stats`: size, mode and EXIF
orientation from the header; with `pixels`, a full decode (which is how truncated files show),
blur (the blur effect of the sharpest part, at 512 px; and the variance of the Laplacian for
the legacy `blur-threshold`), a content hash and two perceptual hashes (dHash, pHash).

`collect` analyses a dataset's images in a process pool when there are many, and caches the
facts in `<dataset>/.lorakit_cache/images-v3.json` keyed by path, size and modification time.
Pillow and numpy are imported when an image is analysed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes
from lora_core.datasets.model import Dataset

DEFAULT_MAX_PIXELS = 89_478_485

CACHE_FOLDER = ".lorakit_cache"
CACHE_FILE = "images-v3.json"  # v3: blur effect and pHash added
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
    import numpy as np
    from PIL import Image

    content = hashlib.blake2b(f"{image.mode}{image.size}".encode() + image.tobytes(), digest_size=16).hexdigest()
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
    # Through a 64x64 Lanczos thumbnail, then 9x8 boxes: re-encoding or resizing flips few bits
    small = np.asarray(grey.resize((64, 64), Image.Resampling.LANCZOS).resize((9, 8), Image.Resampling.BOX),
                       dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    dhash = int("".join("1" if b else "0" for b in bits), 2)
    # dHash sees only gradients (two flat images of different colours hash alike): a 4x4 colour
    # thumbnail must agree too
    colours = np.asarray(image.convert("RGB").resize((4, 4), Image.Resampling.BILINEAR), dtype=np.uint8)
    return {"content": content, "blur": blur_effect(pixels), "laplacian": laplacian, "dhash": dhash,
            "phash": phash(grey), "colours": colours.flatten().tolist()}


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
    worst = None
    for dy, dx in ((1, 0), (0, 1), (1, 1), (1, -1)):
        # the sum of `length` pixels along (dy, dx) around each pixel: a box blur, times length
        summed = padded[r - r * dy: r - r * dy + height, r - r * dx: r - r * dx + width].copy()
        for t in range(1 - r, r + 1):
            summed += padded[r + t * dy: r + t * dy + height, r + t * dx: r + t * dx + width]
        rows = slice(r, height - r - 1)
        cols = slice(r, width - r - 1) if dx >= 0 else slice(r + 1, width - r)
        ahead = (slice(r + dy, height - r - 1 + dy), slice(cols.start + dx, cols.stop + dx))
        change = np.abs(image[ahead] - image[rows, cols])
        kept = length * change - np.abs(summed[ahead] - summed[rows, cols])  # variation the re-blur removes
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
    blocks = values[:rows * block, :cols * block].reshape(rows, block, cols, block).sum(axis=(1, 3), dtype=np.int64)
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


def make_cache_folder(folder: Path) -> Path:
    """The dataset's `.lorakit_cache/`, with a `.gitignore` that keeps it out of version control
    (datasets are often git repositories: the cache must never show up as a change)."""
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by lorakit: this folder is a cache\n*\n", encoding="utf-8")
    return folder


def _cache_path(dataset: Dataset) -> Path:
    return Path(dataset.root) / CACHE_FOLDER / CACHE_FILE


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _workers(setting: int, count: int) -> int:
    if count < POOL_MIN_IMAGES or threading.active_count() > 1:
        return 1
    return setting or min(8, os.cpu_count() or 1)


def collect(dataset: Dataset, pixels: bool, settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Facts for every existing image of the dataset, by image name (from the cache where the
    file is unchanged). `settings`: the `[images]` section (max-pixels, cache, workers)."""
    settings = settings or {}
    records = [r for r in dataset.records if r.image_path and r.image_exists]
    cache_on = bool(settings.get("cache", True))
    cache_file = _cache_path(dataset)
    cache = _load_cache(cache_file) if cache_on else {}
    max_pixels = int(settings.get("max-pixels", DEFAULT_MAX_PIXELS))
    results: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, str, list[int]]] = []
    for record in records:
        path = str(record.image_path)
        try:
            stat = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL in the name (no such file can exist)
            continue
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = cache.get(path)
        if entry and entry.get("stamp") == stamp and (entry["facts"].get("pixels") or not pixels) \
                and entry.get("max_pixels") == max_pixels:
            results[record.image] = entry["facts"]
        else:
            todo.append((record.image, path, stamp))
    workers = _workers(int(settings.get("workers", 0)), len(todo))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            computed = list(pool.map(analyse, [p for _, p, _ in todo], [pixels] * len(todo),
                                     [max_pixels] * len(todo), chunksize=max(1, len(todo) // (workers * 8))))
    else:
        computed = [analyse(path, pixels, max_pixels) for _, path, _ in todo]
    for (image, path, stamp), found in zip(todo, computed):
        results[image] = found
        cache[path] = {"stamp": stamp, "max_pixels": max_pixels, "facts": found}
    if cache_on and todo:
        try:
            make_cache_folder(cache_file.parent)
            atomic_write_bytes(cache_file, json.dumps(cache, separators=(",", ":")).encode("utf-8"))
        except OSError:
            pass  # a read-only dataset folder: lint still works, only slower next time
    return results



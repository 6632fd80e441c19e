"""Benchmark: the image rules (LK6xx) cold and cached, with peak memory.

    python bench/bench_images.py [--images 10000] [--repeat 3] [--kind photos] [--workdir build/bench-images]

Kinds of dataset (generated once):
- photos: sharp, distinct 512x512 JPEGs, quality 90; about 2% exact or re-encoded duplicates and
  2% blurred, so the rules have work to report;
- identical: one 512 px photo under every name (hard links: a folder of placeholders, or the
  frames of a still video);
- flat: 512 px flat PNGs in five colours and three sizes;
- distinct: distinct 128 px photos (the duplicate search's scaling: every image is a
  representative, none is a duplicate).
Times `lorakit lint --select LK6 --format concise` cold (cache deleted before each run) and cached
(unchanged files: headers are not even opened), interleaved, and reads each run's peak RSS
(`/usr/bin/time -v` when present). Prints images/s for both.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _write(args: tuple[Path, int]) -> str:
    from PIL import Image, ImageFilter

    from lora_core.testing import photo_array

    folder, i = args
    seed = str(i - 1 if i % 50 == 1 else i)  # every 50th image repeats its neighbour (re-encoded)
    image = Image.fromarray(photo_array(seed), "RGB")
    if i % 50 == 7:
        image = image.filter(ImageFilter.GaussianBlur(10))
    image.save(folder / f"{i:05d}.jpg", quality=90 if i % 100 != 1 else 75)
    return f'{i:05d}.jpg,"cybrpnk, neon street {i}"'


def _write_distinct(args: tuple[Path, int]) -> str:
    from PIL import Image

    from lora_core.testing import photo_array

    folder, i = args
    Image.fromarray(photo_array(f"distinct {i}", 128), "RGB").save(folder / f"{i:06d}.png", compress_level=1)
    return f'{i:06d}.png,"cybrpnk, neon street {i}"'


def _write_flat(args: tuple[Path, int]) -> str:
    from PIL import Image

    folder, i = args
    colours = ["#202020", "#e0e0e0", "#c03030", "#3060c0", "#30a050"]
    sizes = [(512, 512), (512, 640), (640, 512)]
    Image.new("RGB", sizes[i % 3], colours[(i // 3) % 5]).save(folder / f"{i:05d}.png")
    return f'{i:05d}.png,"cybrpnk, flat colour {i}"'


def _write_identical(folder: Path, count: int) -> list[str]:
    from PIL import Image

    from lora_core.testing import photo_array

    first = folder / "00000.jpg"
    Image.fromarray(photo_array("placeholder"), "RGB").save(first, quality=90)
    for i in range(1, count):
        os.link(first, folder / f"{i:05d}.jpg")
    return [f'{i:05d}.jpg,"cybrpnk, placeholder {i}"' for i in range(count)]


def generate(folder: Path, count: int, kind: str = "photos") -> Path:
    from multiprocessing import Pool

    marker = folder / f".complete-{count}"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if kind == "identical":
        lines = ["file_name,text", *_write_identical(folder, count)]
    else:
        writer = {"photos": _write, "flat": _write_flat, "distinct": _write_distinct}[kind]
        with Pool() as pool:
            lines = ["file_name,text", *pool.map(writer, [(folder, i) for i in range(count)], chunksize=64)]
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    marker.write_text("ok")
    return folder


def lint_once(folder: Path, cold: bool) -> tuple[float, float | None]:
    """(seconds, peak RSS in MB or None) of one lint."""
    if cold:
        shutil.rmtree(folder / ".lorakit_cache", ignore_errors=True)
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    run = subprocess.run([*timer, sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--isolated",
                          "--select", "LK6", "--format", "concise"], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    return seconds, int(peak.group(1)) / 1024 if peak else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="build/bench-images")
    parser.add_argument("--kind", choices=["photos", "identical", "flat", "distinct"], default="photos")
    args = parser.parse_args()
    started = time.perf_counter()
    folder = generate(Path(args.workdir) / f"{args.kind}-{args.images}", args.images, args.kind)
    print(f"dataset ready in {time.perf_counter() - started:.1f} s: {folder}", flush=True)
    cold, warm = [], []
    for _ in range(args.repeat):
        cold.append(lint_once(folder, cold=True))
        warm.append(lint_once(folder, cold=False))
    for label, runs in (("cold", cold), ("cached", warm)):
        median = statistics.median(t for t, _ in runs)
        peaks = [p for _, p in runs if p is not None]
        peak = f", peak {max(peaks):.0f} MB" if peaks else ""
        print(f"{args.kind} {label:>6}: median {median:.2f} s (min {min(t for t, _ in runs):.2f}), "
              f"{args.images / median:,.0f} images/s{peak}", flush=True)
    result = subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--isolated", "--select",
                             "LK6", "--statistics", "--format", "concise"], capture_output=True, text=True)
    print(result.stdout.strip().splitlines()[-8:])


if __name__ == "__main__":
    main()

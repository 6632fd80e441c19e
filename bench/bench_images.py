"""Benchmark: the image rules (LK6xx) on generated 512 px photos, cold and cached.

    python bench/bench_images.py [--images 10000] [--repeat 3] [--workdir build/bench-images]

Generates the images once (sharp, distinct 512x512 JPEGs, quality 90; about 2% exact or
re-encoded duplicates and 2% blurred, so the rules have work to report), then times
`lorakit lint --select LK6 --format concise` cold (cache deleted before each run) and cached
(unchanged files: headers are not even opened), interleaved. Prints images/s for both.
"""

from __future__ import annotations

import argparse
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


def generate(folder: Path, count: int) -> Path:
    from multiprocessing import Pool

    marker = folder / f".complete-{count}"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with Pool() as pool:
        lines = ["file_name,text", *pool.map(_write, [(folder, i) for i in range(count)], chunksize=64)]
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    marker.write_text("ok")
    return folder


def lint_once(folder: Path, cold: bool) -> float:
    if cold:
        shutil.rmtree(folder / ".lorakit_cache", ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--isolated", "--select", "LK6",
                    "--format", "concise"], capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="build/bench-images")
    args = parser.parse_args()
    started = time.perf_counter()
    folder = generate(Path(args.workdir) / f"photos-{args.images}", args.images)
    print(f"dataset ready in {time.perf_counter() - started:.1f} s: {folder}", flush=True)
    cold, warm = [], []
    for _ in range(args.repeat):
        cold.append(lint_once(folder, cold=True))
        warm.append(lint_once(folder, cold=False))
    for label, times in (("cold", cold), ("cached", warm)):
        median = statistics.median(times)
        print(f"{label:>6}: median {median:.2f} s (min {min(times):.2f}), {args.images / median:,.0f} images/s",
              flush=True)
    result = subprocess.run([sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--isolated", "--select",
                             "LK6", "--statistics", "--format", "concise"], capture_output=True, text=True)
    print(result.stdout.strip().splitlines()[-8:])


if __name__ == "__main__":
    main()

"""Long captions: lint time against caption length, and the full report against the concise one.

    python bench/bench_long_captions.py [--rows 100000] [--workdir build/long]

Builds two metadata.csv files with the same number of rows, tag-list captions of about 148 and
about 500 characters (the second set is over CLIP's 75 tokens in every row: LK501 reports all
of them), plus one pathological set (one 1,000,000-character caption, one 20,000-tag caption,
one 100,000-character repeated tag). Times `lorakit lint --isolated --ignore LK6,LK0` in the
concise and the full format, once each, interleaved. What to read: time per megabyte of
captions for the two lengths (the lint should stay close to linear in the text), and full over
concise (the full report should cost little more than the concise one).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORDS = ["neon", "city", "rain", "night", "alley", "glow", "smog", "drone", "cyborg", "street", "market", "hover",
         "car", "rooftop", "bar", "android", "holographic", "billboard", "subway", "platform", "tower"]


def caption(rng: random.Random, length: int) -> str:
    tags: list[str] = []
    while len(", ".join(tags)) < length:
        tags.append(" ".join(rng.sample(WORDS, 2)) + str(rng.randint(0, 99)))
    return "cybrpnk, " + ", ".join(tags)


def write(folder: Path, captions: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file_name,text"] + [f'i{i}.png,"{c}"' for i, c in enumerate(captions)]
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("build/long"))
    args = parser.parse_args()
    rng = random.Random(1)
    shutil.rmtree(args.workdir, ignore_errors=True)
    sets = {
        "148 chars": write(args.workdir / "short", [caption(rng, 140) for _ in range(args.rows)]),
        "500 chars": write(args.workdir / "long", [caption(rng, 490) for _ in range(args.rows)]),
        "pathological": write(args.workdir / "odd", ["x" * 1_000_000, ", ".join(f"tag{i % 500}" for i in range(20_000)),
                                                    "rain, " * 20_000] + [f"cybrpnk, neon city {i}, rain, night"
                                                                         for i in range(20)]),
    }
    lorakit = str(Path(sys.executable).with_name("lorakit"))
    print(f"{'set':<14} {'MB':>6} {'concise s':>10} {'full s':>8} {'full/concise':>13} {'s per MB':>9}")
    for name, folder in sets.items():
        size = (folder / "metadata.csv").stat().st_size / 1e6
        seconds = {}
        for fmt in ("concise", "full"):
            started = time.perf_counter()
            subprocess.run([lorakit, "lint", str(folder), "--isolated", "--ignore", "LK6,LK0", "--format", fmt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            seconds[fmt] = time.perf_counter() - started
        print(f"{name:<14} {size:>6.1f} {seconds['concise']:>10.2f} {seconds['full']:>8.2f} "
              f"{seconds['full'] / seconds['concise']:>13.2f} {seconds['concise'] / size:>9.3f}")


if __name__ == "__main__":
    main()

"""Benchmark: a warm default lint (image rules on, cache filled) of a large sidecar dataset, side by
side with lora-audit's scan of the same folder, interleaved, with peak memory.

    python bench/bench_image_scale.py --folder build/bench/sidecar100000-v1 \
        [--lora-audit build/peers/bin/lora-audit] [--repeat 3]

The folder is bench_lint.py's 100,000 sidecar dataset (`python bench/bench_compare.py --sidecars`
makes it): 100,000 `.txt` captions beside 100,000 hard links to one tiny PNG, the worst case for a
duplicate search (every image has the same pixels). The first lint fills lorakit's image cache and
is not timed; then `lorakit lint FOLDER --format concise` (every rule, LK6xx included) and
`lora-audit scan FOLDER -q -o <tmp>` alternate. Peak RSS comes from `/usr/bin/time -v`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> tuple[float, float | None]:
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    run = subprocess.run([*timer, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    return seconds, int(peak.group(1)) / 1024 if peak else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--lora-audit", default="")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(args.folder)
    lorakit = [sys.executable, "-m", "lora_core.cli", "lint", str(folder), "--format", "concise"]
    started = time.perf_counter()
    subprocess.run(lorakit, capture_output=True, text=True)  # fills the image cache
    print(f"cache filled in {time.perf_counter() - started:.1f} s", flush=True)
    runs: dict[str, list[tuple[float, float | None]]] = {"lorakit warm lint": [], "lora-audit scan": []}
    out = Path(tempfile.mkdtemp(prefix="lora-audit-"))
    try:
        for _ in range(args.repeat):
            runs["lorakit warm lint"].append(timed(lorakit))
            if args.lora_audit:
                runs["lora-audit scan"].append(timed([args.lora_audit, "scan", str(folder), "-q", "-o",
                                                      str(out / "report.html")]))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    for name, measured in runs.items():
        if not measured:
            continue
        peaks = [p for _, p in measured if p is not None]
        peak = f", peak {max(peaks):.0f} MB" if peaks else ""
        print(f"{name:<18} median {statistics.median(t for t, _ in measured):.2f} s{peak}", flush=True)
    if runs["lora-audit scan"]:
        ratios = [a / b for (a, _), (b, _) in zip(runs["lorakit warm lint"], runs["lora-audit scan"])]
        print(f"lorakit / lora-audit: median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

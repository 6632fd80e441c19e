"""Benchmark: `lorakit review` on big sidecar datasets (issue 25's targets).

    python bench/bench_review.py                      # 1,000 and 10,000 captions
    python bench/bench_review.py --sizes 1000 --edits 5

Per size: opening the session (read + full lint, as the server starts), the first page
(`GET /api/state`) warm, a keystroke's re-lint (`POST /api/edit`, median of `--edits`), beside
what a user would do without the in-memory session: `lorakit lint` again after each edit (the API's
`lint()`, reading every file again); and the process's peak memory. Through the real ASGI app
(Starlette's TestClient, in process: no network in the timings). 64x64 PNG of a distinct colour and
a tag caption per image; the image cache warm (a second lint), as on a dataset already linted.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ["neon city", "rain", "night", "street", "red coat", "umbrella", "fog", "signs", "alley", "car", "portrait",
         "woman", "man", "bridge", "river", "lantern", "crowd", "rooftop", "market", "tram"]


def make_dataset(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(count)
    for i in range(count):
        image = folder / f"{i:05d}.png"
        if not image.exists():
            Image.new("RGB", (64, 64), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(image)
            (folder / f"{i:05d}.txt").write_text("zyla, " + ", ".join(rng.sample(WORDS, 5)) + "\n")
    return folder


def measure(folder: Path, edits: int) -> dict[str, float]:
    from starlette.testclient import TestClient

    from lora_core import api
    from lora_core.review.app import COOKIE, ReviewState, create_app
    from lora_core.session import DatasetSession

    started = time.perf_counter()
    state = ReviewState(DatasetSession(folder))
    opened = time.perf_counter() - started
    client = TestClient(create_app(state, "t", {"testserver"}))
    client.cookies.set(COOKIE, "t")
    client.get("/api/state")
    started = time.perf_counter()
    page = client.get("/api/state")
    first_page = time.perf_counter() - started
    keystrokes = []
    for n in range(edits):
        started = time.perf_counter()
        answer = client.post("/api/edit", json={"i": n, "caption": f"zyla, red coat, rain, take {n}"})
        keystrokes.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the server's own, before the baseline
    relints = []
    for _ in range(max(1, edits // 3)):
        started = time.perf_counter()
        api.lint(folder)
        relints.append(time.perf_counter() - started)
    return {"captions": len(state.session.dataset.records), "open_s": opened, "first_page_s": first_page,
            "page_mb": len(page.content) / 2**20, "keystroke_ms": statistics.median(keystrokes) * 1000,
            "lint_again_ms": statistics.median(relints) * 1000,
            "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--edits", type=int, default=9)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a size, in a child process
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.gettempdir()) / "lorakit-bench-review"
    if args.one:
        print(json.dumps(measure(make_dataset(workdir / f"ds{args.one}", args.one), args.edits)))
        return
    import subprocess

    for size in (int(s) for s in args.sizes.split(",")):
        folder = make_dataset(workdir / f"ds{size}", size)
        # the image cache, as on a dataset linted before (in another process: its memory is not the server's)
        subprocess.run([sys.executable, "-m", "lora_core", "lint", str(folder), "--format", "concise"],
                       capture_output=True)
        child = subprocess.run([sys.executable, __file__, "--one", str(size), "--edits", str(args.edits),
                                "--workdir", str(workdir)], capture_output=True, text=True)
        if child.returncode != 0:
            print(f"{size}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{row['captions']:>6} captions: open {row['open_s']:.2f} s, first page {row['first_page_s']:.2f} s "
              f"({row['page_mb']:.1f} MB), keystroke re-lint {row['keystroke_ms']:.0f} ms vs lint again "
              f"{row['lint_again_ms']:.0f} ms (ratio {row['lint_again_ms'] / row['keystroke_ms']:.1f}x), "
              f"peak {row['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()

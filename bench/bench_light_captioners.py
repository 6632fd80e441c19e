"""Benchmark: the captioners without torch, each beside what a user would run instead, in one run.

    python bench/bench_light_captioners.py                        # both, on this machine
    python bench/bench_light_captioners.py --only openai --latency 0.2 --images 128

wd-tagger: lorakit's `WdTagger` (batches of 1, 8 and 32) against the reference loop of SmilingWolf's
wd-tagger app (the code taggers copy: per image, composite, pad, resize, BGR, one `session.run`),
both on the same tiny ONNX tagger with the real WD v3 signature at 448 px (its compute is small, so
the figures are preprocessing and per-call overhead: the part lorakit adds or saves) and the same
640x480 JPEGs. openai: lorakit's `OpenAICaptioner` against the official `openai` client (when
installed) doing the same requests from as many threads, both against the fake OpenAI-compatible
server of lora_core.testing with `--latency` seconds per answer (a model's time), at 1, 4 and 16
concurrent requests. Median of `--repeat` runs; images/s.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_images(folder: Path, count: int) -> list:
    import numpy as np
    from PIL import Image

    from lora_core.protocols import ImageItem

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i in range(count):
        path = folder / f"{i:04d}.jpg"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path, quality=90)
        items.append(ImageItem(path.name, path, folder))
    return items


def reference_wd_loop(model_dir: Path, items: list) -> list[list[str]]:
    """SmilingWolf's wd-tagger app.py, as taggers copy it: one image per session.run."""
    import csv

    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    _, height, _, _ = session.get_inputs()[0].shape
    with open(model_dir / "selected_tags.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = [r["name"] for r in rows]
    general = [i for i, r in enumerate(rows) if r["category"] == "0"]
    out = []
    for item in items:
        image = Image.open(item.path)
        canvas = Image.new("RGBA", image.size, (255, 255, 255))
        canvas.alpha_composite(image.convert("RGBA"))
        image = canvas.convert("RGB")
        side = max(image.size)
        padded = Image.new("RGB", (side, side), (255, 255, 255))
        padded.paste(image, ((side - image.size[0]) // 2, (side - image.size[1]) // 2))
        if side != height:
            padded = padded.resize((height, height), Image.BICUBIC)
        array = np.asarray(padded, dtype=np.float32)[:, :, ::-1]
        array = np.expand_dims(array, axis=0)
        preds = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: array})[0]
        out.append([names[i] for i in general if preds[0][i] > 0.35])
    return out


def bench_wd(items: list, repeat: int, workdir: Path) -> None:
    from lorakit_wd import WdTagger

    from lora_core.testing.tiny_taggers import tiny_wd_tagger

    model = tiny_wd_tagger(workdir / "wd-model", size=448)
    tagger = WdTagger(model=str(model), underscores="keep")
    reference = reference_wd_loop(model, items[:2])
    mine = [[t for t in c.split(", ") if t not in ("hatsune_miku",)] for c in tagger.caption(items[:2])]
    assert [set(t) - {"^_^"} for t in mine] == [set(t) - {"^_^"} for t in reference], (mine, reference)

    def timed(run) -> float:
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            run()
            runs.append(len(items) / (time.perf_counter() - started))
        return statistics.median(runs)

    base = timed(lambda: reference_wd_loop(model, items))
    print(f"wd-tagger reference app.py loop (batch 1): {base:.1f} images/s")
    for batch in (1, 8, 32):
        rate = timed(lambda b=batch: [tagger.caption(items[i:i + b]) for i in range(0, len(items), b)])
        print(f"wd-tagger lorakit batch {batch:>2}: {rate:.1f} images/s, ratio {rate / base:.2f}")


def bench_openai(items: list, repeat: int, latency: float) -> None:
    from lorakit_openai import OpenAICaptioner

    from lora_core.testing.openai_server import FakeOpenAIServer

    try:
        import openai
    except ImportError:
        openai = None
    with FakeOpenAIServer(latency=latency) as server:
        for concurrency in (1, 4, 16):
            captioner = OpenAICaptioner(base_url=server.url, api_key="x", concurrency=concurrency, max_side=1024)

            def lorakit_run(c=captioner) -> None:
                c.caption(items)

            def client_run(c=concurrency) -> None:
                client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=4)

                def one(item) -> str:
                    with open(item.path, "rb") as handle:  # what a user's script sends: the file as it is
                        url = "data:image/jpeg;base64," + base64.b64encode(handle.read()).decode()
                    answer = client.chat.completions.create(model="tiny-vl", max_tokens=300, temperature=0, messages=[
                        {"role": "user", "content": [{"type": "text", "text": "Caption this image."},
                                                     {"type": "image_url", "image_url": {"url": url}}]}])
                    return answer.choices[0].message.content or ""

                with ThreadPoolExecutor(max_workers=c) as pool:
                    list(pool.map(one, items))

            rates = {}
            for name, run in (("lorakit", lorakit_run), ("openai client", client_run if openai else None)):
                if run is None:
                    continue
                runs = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    run()
                    runs.append(len(items) / (time.perf_counter() - started))
                rates[name] = statistics.median(runs)
            ideal = concurrency / latency if latency else float("inf")
            shown = ", ".join(f"{n} {r:.1f} images/s" for n, r in rates.items())
            ratio = f", ratio {rates['lorakit'] / rates['openai client']:.2f}" if "openai client" in rates else ""
            print(f"openai concurrency {concurrency:>2}: {shown}{ratio} (ideal {ideal:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the fake server takes per answer")
    parser.add_argument("--only", choices=["wd", "openai"])
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lorakit-bench-"))
    items = make_images(workdir / "images", args.images)
    if args.only in (None, "wd"):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("wd-tagger: skipped (pip install 'lorakit[wd]')")
        else:
            bench_wd(items, args.repeat, workdir)
    if args.only in (None, "openai"):
        bench_openai(items, args.repeat, args.latency)


if __name__ == "__main__":
    main()

"""Benchmark: captioning throughput (images/s) and peak memory of each built-in captioner.

    python bench/bench_caption.py                                   # tiny models on the CPU (harness check)
    python bench/bench_caption.py --size full --device cuda         # real-size architectures, random weights
    python bench/bench_caption.py --captioners blip --model blip=/models/blip-large --device cuda

Each (captioner, batch size) runs in its own process, so peak memory is its own: peak RSS on the
CPU, `torch.cuda.max_memory_allocated` on a GPU. The images are 640x480 random-noise JPEGs, decoded
and preprocessed through the captioner's own `prepare` (in DataLoader workers on CUDA, as
`lorakit caption` does), so the figures include preprocessing. One warm-up batch is not timed.

Sizes: `tiny` builds the test suite's tiny random models (lora_core.testing.tiny_models): the numbers are
per-step overhead, not FLOPs, and only check the harness. `full` builds the real architectures with
random weights (same compute as the real checkpoints): BLIP-large (ViT-L/16 at 384 px),
BLIP-2 OPT-2.7b, CoCa ViT-L-14, and the CLIP ViT-L/14 scorer; for a GPU. Generation is forced to
`--new-tokens` tokens per caption so random and real weights do the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CAPTIONERS = ("blip", "blip2", "coca", "clip", "vlm", "vlm-llava", "florence2")
#: The `vlm` captioner's benchmark names: each a model family of its own.
VLM_FAMILIES = {"vlm": "tiny_qwen2_vl", "vlm-llava": "tiny_llava", "florence2": "tiny_florence2"}


def make_images(folder: Path, count: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"{i:04d}.jpg"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path, quality=90)
    return folder


def build_full(name: str, device: str) -> object:
    """A captioner (or the CLIP scorer) around a real-size architecture with random weights, built
    directly on the device (no multi-GB save/load)."""
    import torch
    import transformers

    from lora_core.toolkit.devices import resolve_device, resolve_dtype

    target = resolve_device(device)
    dtype = resolve_dtype("auto", target)
    with torch.device(target):
        if name == "blip":
            from lorakit_blip import BlipCaptioner

            config = transformers.BlipConfig(
                vision_config=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                   num_attention_heads=16, image_size=384, patch_size=16),
                text_config=dict(encoder_hidden_size=1024))
            model = transformers.BlipForConditionalGeneration(config).to(dtype)
            processor = transformers.BlipProcessor(
                image_processor=transformers.BlipImageProcessor(size={"height": 384, "width": 384}),
                tokenizer=_bert_tokenizer())
            return BlipCaptioner.from_parts(processor, model, device=device, num_beams=1)
        if name == "blip2":
            from lorakit_blip2 import Blip2Captioner

            tokenizer = _gpt2_tokenizer()
            processor = transformers.Blip2Processor(image_processor=transformers.BlipImageProcessor(),
                                                    tokenizer=tokenizer, num_query_tokens=32)
            config = transformers.Blip2Config(
                text_config=dict(model_type="opt", hidden_size=2560, ffn_dim=10240, num_hidden_layers=32,
                                 num_attention_heads=32, word_embed_proj_dim=2560, vocab_size=50304,
                                 bos_token_id=2, eos_token_id=2, pad_token_id=1),
                num_query_tokens=32, image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"))
            model = transformers.Blip2ForConditionalGeneration(config).to(dtype)
            return Blip2Captioner.from_parts(processor, model, device=device, num_beams=1)
        if name == "coca":
            import open_clip
            from lorakit_coca import CocaCaptioner

            model, _, preprocess = open_clip.create_model_and_transforms("coca_ViT-L-14", pretrained=None)
            return CocaCaptioner.from_parts(model, preprocess, open_clip.get_tokenizer("coca_ViT-L-14"),
                                            device=device, method="greedy")
        if name == "clip":  # openai/clip-vit-large-patch14's architecture
            import tempfile

            from lora_core.toolkit.clip_scoring import ClipScorer
            from lora_core.toolkit.clip_tokens import write_tokenizer_folder

            tokenizer = transformers.CLIPTokenizer.from_pretrained(write_tokenizer_folder(Path(tempfile.mkdtemp())))
            processor = transformers.CLIPProcessor(image_processor=transformers.CLIPImageProcessor(),
                                                   tokenizer=tokenizer)
            config = transformers.CLIPConfig(
                text_config=dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12),
                vision_config=dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                                   num_hidden_layers=24, patch_size=14, image_size=224),
                projection_dim=768)
            return ClipScorer.from_parts(processor, transformers.CLIPModel(config).to(dtype), device=device)
    raise SystemExit(f"--size full has no {name} builder")


def _bert_tokenizer() -> object:
    """A WordPiece tokenizer with BLIP's special tokens; its vocabulary size does not change the
    vision tower's cost, and the text decoder is built with the real vocabulary size."""
    import tempfile

    from transformers import BertTokenizer

    folder = Path(tempfile.mkdtemp())
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz")
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tokenizer


def _gpt2_tokenizer() -> object:
    import tempfile

    from transformers import GPT2Tokenizer

    from lora_core.testing.tiny_models import _byte_level_bpe

    vocab, merges = _byte_level_bpe(Path(tempfile.mkdtemp()))
    return GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>", unk_token="<unk>",
                         pad_token="<pad>", add_bos_token=True)


def build_tiny(name: str, workdir: Path, device: str) -> object:
    from lora_core.testing import tiny_models

    folder = workdir / f"tiny-{name}"
    if not folder.exists():
        builders = {"blip": tiny_models.tiny_blip, "blip2": tiny_models.tiny_blip2, "coca": tiny_models.tiny_coca,
                    "clip": tiny_models.tiny_clip, **{n: getattr(tiny_models, b) for n, b in VLM_FAMILIES.items()}}
        builders[name](folder)
    return load(name, str(folder), device)


def load(name: str, model: str, device: str) -> object:
    if name == "clip":
        from lora_core.toolkit.clip_scoring import ClipScorer

        return ClipScorer(model, device=device)
    if name == "coca":
        from lorakit_coca import CocaCaptioner

        return CocaCaptioner(model=model, device=device, decoding="greedy")
    from lora_core.plugins import load_plugins

    plugin = "vlm" if name in VLM_FAMILIES else name
    return load_plugins().captioners[plugin].factory(model=model, device=device, num_beams=1)


def force_length(captioner: object, tokens: int) -> None:
    """Every caption gets exactly `tokens` new tokens, whatever the weights predict."""
    if hasattr(captioner, "settings"):  # coca
        import dataclasses

        captioner.settings = dataclasses.replace(captioner.settings, max_new_tokens=tokens, min_new_tokens=tokens)
    elif hasattr(captioner, "generation"):  # vlm
        captioner.generation.update(max_new_tokens=tokens, min_new_tokens=tokens)
    elif hasattr(captioner, "max_new_tokens"):
        captioner.max_new_tokens = tokens
        captioner.model.generation_config.min_new_tokens = tokens


def measure_one(name: str, batch: int, args: argparse.Namespace) -> dict:
    import torch

    from lora_core.captioning import list_images, run_captioner

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    items = list_images(make_images(workdir / "images", args.images))
    models = dict(m.split("=", 1) for m in args.model)
    if name in models:
        captioner = load(name, models[name], args.device)
    elif args.size == "full":
        captioner = build_full(name, args.device)
    else:
        captioner = build_tiny(name, workdir, args.device)
    device = str(getattr(captioner, "device", "cpu"))
    if name != "clip":
        force_length(captioner, args.new_tokens)
    cuda = device.startswith("cuda")

    def run(part: list) -> None:
        if name == "clip":  # the --vote clip scorer: each image against two candidate captions
            for b in range(0, len(part), batch):
                chunk = part[b:b + batch]
                captioner.score_candidates([i.load() for i in chunk], [["a neon city at night", "a cat"]] * len(chunk))
        else:
            run_captioner(captioner, part, [None], batch, args.workers)
        if cuda:
            torch.cuda.synchronize()

    run(items[:batch])  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run(items)
    elapsed = time.perf_counter() - started
    if cuda:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        import resource

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"captioner": name, "batch": batch, "images": len(items), "seconds": round(elapsed, 3),
            "images_per_s": round(len(items) / elapsed, 2), "peak_mb": round(peak_mb), "device": device,
            "gpu": torch.cuda.get_device_name() if cuda else "", "size": args.size if name not in models else "folder"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captioners", default=",".join(CAPTIONERS))
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER", help="a real model folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default="build/bench-caption")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # NAME:BATCH, run in a child process
    args = parser.parse_args()
    if args.one:
        name, batch = args.one.split(":")
        print(json.dumps(measure_one(name, int(batch), args)))
        return
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    rows = []
    passthrough = sys.argv[1:]
    for name in args.captioners.split(","):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            child = subprocess.run([sys.executable, __file__, *passthrough, "--one", f"{name}:{batch}"],
                                   capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            if child.returncode != 0:
                print(f"{name} batch {batch}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
                continue
            row = json.loads(child.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{row['captioner']:<6} {row['size']:<6} batch {row['batch']:>3}: "
                  f"{row['images_per_s']:>8.2f} images/s  peak {row['peak_mb']:>6} MB  "
                  f"({row['images']} images, {row['device']} {row['gpu']})", flush=True)
    out = Path(args.workdir) / "results.json"
    out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(f"results: {out}")


if __name__ == "__main__":
    main()

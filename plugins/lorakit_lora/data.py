"""Training data: images with captions, aspect-ratio buckets, deterministic augmentation, and the
latent cache.

Every random choice (epoch order, crop, flip, caption shuffle and dropout) is a function of the
seed, the epoch and the image, never of a global generator, so a resumed run sees exactly the
batches an uninterrupted one would, and each process of a distributed run can compute its share.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_core.errors import DatasetError
from lora_core.toolkit.captions import valid_text


@dataclass(frozen=True)
class Example:
    image: Path
    caption: str
    name: str  # relative image name, as in the metadata
    repeats: int = 1  # kohya `N_name` folders


def examples_from(dataset: Any) -> list[Example]:
    """The records of a linted dataset that can be trained on (an image file and a caption)."""
    found = []
    for record in dataset.records:
        if record.image_path and record.image_exists and record.caption is not None:
            # A byte that was not UTF-8 (LK004) is trained as U+FFFD, as a lenient trainer reads it.
            found.append(Example(Path(record.image_path), valid_text(record.caption), record.image,
                                 max(1, record.repeats or 1)))
    if not found:
        raise DatasetError(f"{dataset.path}: no image with a caption to train on")
    return found


def split_validation(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `share` of the images, chosen by a hash of their names (stable when images are
    added), at least one when share > 0 and at least one left to train on."""
    if share <= 0 or len(examples) < 2:
        return examples, []
    ranked = sorted(examples, key=lambda e: hashlib.sha256(f"{seed}:{e.name}".encode()).hexdigest())
    count = min(len(examples) - 1, max(1, round(share * len(examples))))
    held = {e.name for e in ranked[:count]}
    return [e for e in examples if e.name not in held], [e for e in examples if e.name in held]


def bucket_sizes(resolution: int, bucketing: bool, step: int = 64, max_ratio: float = 4.0) -> list[tuple[int, int]]:
    """(width, height) pairs, multiples of `step`, each holding at most resolution² pixels."""
    if not bucketing:
        return [(resolution, resolution)]
    area = resolution * resolution
    sizes = set()
    width = step
    while width <= resolution * 2:
        height = min(resolution * 2, (area // width) // step * step)
        if height >= step and max(width / height, height / width) <= max_ratio:
            sizes.add((width, height))
        width += step
    sizes.add((resolution, resolution))
    return sorted(sizes)


def nearest_bucket(size: tuple[int, int], buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    import math

    ratio = math.log(size[0] / size[1])
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def _rng(*parts: Any) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        size = image.size
        if ImageOps.exif_transpose(image).size != size:
            size = (size[1], size[0])
    return size


def load_pixels(path: Path, bucket: tuple[int, int], crop: str, flip: bool) -> Any:
    """The image resized to cover the bucket, cropped ("center" or a random "x,y" fraction pair),
    optionally mirrored, as a CHW float tensor in [-1, 1]."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    width, height = bucket
    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))),
                           Image.Resampling.LANCZOS)
    spare_x, spare_y = resized.width - width, resized.height - height
    if crop == "center":
        left, top = spare_x // 2, spare_y // 2
    else:
        fx, fy = (float(v) for v in crop.split(","))
        left, top = round(spare_x * fx), round(spare_y * fy)
    cropped = resized.crop((left, top, left + width, top + height))
    if flip:
        cropped = cropped.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(cropped, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def crop_origin(original: tuple[int, int], bucket: tuple[int, int], crop: str) -> tuple[int, int]:
    """(top, left) of the crop in the resized image, in pixels: SDXL's crop conditioning."""
    width, height = bucket
    scale = max(width / original[0], height / original[1])
    spare_x = max(width, round(original[0] * scale)) - width
    spare_y = max(height, round(original[1] * scale)) - height
    if crop == "center":
        return spare_y // 2, spare_x // 2
    fx, fy = (float(v) for v in crop.split(","))
    return round(spare_y * fy), round(spare_x * fx)


def augment_caption(caption: str, shuffle: bool, keep_tokens: int, dropout: float, rng: random.Random) -> str:
    """kohya-style: shuffle the comma-separated tags after the first `keep_tokens`; drop the whole
    caption with probability `dropout`."""
    if dropout > 0 and rng.random() < dropout:
        return ""
    if not shuffle:
        return caption
    tags = [t.strip() for t in caption.split(",")]
    kept, rest = tags[:keep_tokens], tags[keep_tokens:]
    rng.shuffle(rest)
    return ", ".join(t for t in kept + rest if t)


@dataclass(frozen=True)
class Sample:
    """One image's view in one epoch."""

    example: Example
    bucket: tuple[int, int]
    crop: str
    flip: bool
    caption: str


class TrainingData:
    """Buckets and batches. `epoch_batches(epoch)` is the same list on every call and process."""

    def __init__(self, examples: list[Example], settings: Any) -> None:
        self.examples, self.settings = examples, settings
        buckets = bucket_sizes(settings.resolution, settings.bucketing)
        self.size_of = {e.name: image_size(e.image) for e in examples}
        self.bucket_of = {e.name: nearest_bucket(self.size_of[e.name], buckets) for e in examples}

    def sample(self, example: Example, epoch: int, copy: int, augment: bool = True) -> Sample:
        s = self.settings
        rng = _rng(s.seed, epoch, copy, example.name)
        crop = f"{rng.random():.6f},{rng.random():.6f}" if (augment and s.random_crop) else "center"
        flip = augment and s.flip and rng.random() < 0.5
        caption = (augment_caption(example.caption, s.shuffle_captions, s.keep_tokens, s.caption_dropout, rng)
                   if augment else example.caption)
        return Sample(example, self.bucket_of[example.name], crop, flip, caption)

    def epoch_batches(self, epoch: int) -> list[list[Sample]]:
        """Batches of one bucket each, in a seeded order; kohya repeats count as extra copies."""
        s = self.settings
        by_bucket: dict[tuple[int, int], list[Sample]] = {}
        for example in self.examples:
            for copy in range(example.repeats):
                sample = self.sample(example, epoch, copy)
                by_bucket.setdefault(sample.bucket, []).append(sample)
        rng = _rng(s.seed, "order", epoch)
        batches = []
        for bucket in sorted(by_bucket):
            members = by_bucket[bucket]
            rng.shuffle(members)
            batches += [members[i:i + s.batch_size] for i in range(0, len(members), s.batch_size)]
        rng.shuffle(batches)
        return batches

    def fixed_batches(self) -> list[list[Sample]]:
        """Validation: every image once, unaugmented, in name order."""
        by_bucket: dict[tuple[int, int], list[Sample]] = {}
        for example in sorted(self.examples, key=lambda e: e.name):
            sample = self.sample(example, 0, 0, augment=False)
            by_bucket.setdefault(sample.bucket, []).append(sample)
        size = self.settings.batch_size
        return [m[i:i + size] for b in sorted(by_bucket) for m in [by_bucket[b]] for i in range(0, len(m), size)]


class LatentCache:
    """VAE latents on disk, keyed by image content, bucket, crop, flip and the VAE itself: a
    changed image (or another VAE) is encoded again, an unchanged one never."""

    def __init__(self, folder: Path | None, vae_key: str) -> None:
        self.folder = folder / vae_key if folder is not None else None
        self.memory: dict[str, Any] = {}

    @staticmethod
    def vae_key(vae: Any, source: str) -> str:
        import json

        config = json.dumps(dict(vae.config), sort_keys=True, default=str)
        return hashlib.sha256(f"{source}\n{config}".encode()).hexdigest()[:16]

    def key(self, sample: Sample) -> str:
        content = hashlib.sha256(sample.example.image.read_bytes()).hexdigest()[:32]
        return f"{content}-{sample.bucket[0]}x{sample.bucket[1]}-{sample.crop}-{int(sample.flip)}"

    def get(self, sample: Sample, encode: Any) -> Any:
        import torch

        key = self.key(sample)
        if key in self.memory:
            return self.memory[key]
        path = self.folder / f"{key}.pt" if self.folder is not None else None
        if path is not None and path.is_file():
            try:
                latent = torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                latent = None  # a damaged cache file is simply encoded again
            if latent is not None and not isinstance(latent, torch.Tensor):
                latent = None  # not a latent (the weights-only loader ran no code): encode again
            if latent is not None:
                self.memory[key] = latent
                return latent
        latent = encode(sample).detach().cpu()
        if path is not None:
            import io

            from lora_core.atomic import atomic_write_bytes

            buffer = io.BytesIO()
            torch.save(latent, buffer)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, buffer.getvalue())
        self.memory[key] = latent
        return latent

"""The trainer's data and monitoring pieces on their own: buckets, deterministic augmentation,
the validation split, the latent cache's keys, and the label-noise warning."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from lora_core.testing import write_photo

pytest.importorskip("PIL")


def settings(**kw):
    base = dict(resolution=512, bucketing=True, seed=1, random_crop=False, flip=False, shuffle_captions=False,
                keep_tokens=0, caption_dropout=0.0, batch_size=2)
    return types.SimpleNamespace(**{**base, **kw})


def test_buckets_hold_the_resolution_area_in_multiples_of_64():
    from lorakit_lora.data import bucket_sizes, nearest_bucket

    buckets = bucket_sizes(512, True)
    assert (512, 512) in buckets and all(w % 64 == 0 and h % 64 == 0 and w * h <= 512 * 512 for w, h in buckets)
    assert nearest_bucket((1920, 1080), buckets) == (640, 384)  # 16:9 lands on the closest ratio
    assert nearest_bucket((1080, 1920), buckets) == (384, 640)
    assert bucket_sizes(512, False) == [(512, 512)]


def test_augmentation_is_a_function_of_seed_epoch_and_image(tmp_path):
    from lorakit_lora.data import Example, TrainingData, augment_caption

    examples = [Example(write_photo(tmp_path / f"{i}.png", str(i), 64), f"trig, a{i}, b{i}, c{i}", f"{i}.png",
                        repeats=2 if i == 0 else 1) for i in range(5)]
    data = TrainingData(examples, settings(resolution=64, random_crop=True, flip=True, shuffle_captions=True,
                                           keep_tokens=1))
    first, again = data.epoch_batches(0), TrainingData(examples, data.settings).epoch_batches(0)
    assert first == again  # the same on every call and in every process
    assert data.epoch_batches(1) != first  # but a new order and new augmentation each epoch
    assert sum(len(b) for b in first) == 6  # kohya repeats: image 0 twice
    assert all(s.caption.startswith("trig, ") for b in first for s in b)  # keep-tokens stay in front
    import random

    assert augment_caption("a, b", False, 0, 1.0, random.Random(0)) == ""  # dropout removes the caption


def test_validation_split_is_stable_when_images_are_added(tmp_path):
    from lorakit_lora.data import Example, split_validation

    examples = [Example(Path(f"{i}.png"), "x", f"{i}.png") for i in range(20)]
    train, held = split_validation(examples, 0.2, seed=3)
    assert len(held) == 4 and not {e.name for e in held} & {e.name for e in train}
    _, held_more = split_validation(examples + [Example(Path("new.png"), "x", "new.png")], 0.2, seed=3)
    # the held-out images are chosen by a hash of their names: a new image can take one place, no
    # image moves from training to validation because another was added
    assert {e.name for e in held_more} <= {e.name for e in held} | {"new.png"}


def test_latent_cache_keys_follow_content_size_crop_flip_and_vae(tmp_path):
    from lorakit_lora.data import Example, LatentCache, Sample

    path = write_photo(tmp_path / "a.png", "a", 64)
    sample = Sample(Example(path, "x", "a.png"), (64, 64), "center", False, "x")
    cache = LatentCache(tmp_path / "cache", "vae1")
    key = cache.key(sample)
    assert cache.key(Sample(sample.example, (64, 64), "center", True, "x")) != key  # flipped
    assert cache.key(Sample(sample.example, (128, 64), "center", False, "x")) != key  # another bucket
    write_photo(path, "changed", 64)
    assert cache.key(sample) != key  # a changed image is encoded again
    calls = []
    latent = cache.get(sample, lambda s: calls.append(1) or __import__("torch").ones(4, 8, 8))
    assert LatentCache(tmp_path / "cache", "vae1").get(sample, lambda s: calls.append(2)).equal(latent)
    assert calls == [1]  # the second cache read it from disk
    assert LatentCache(tmp_path / "cache", "vae2").folder != cache.folder  # another VAE, another folder


def test_the_label_noise_warning():
    from lorakit_lora.monitor import noise_warning, rise_after_plateau

    assert rise_after_plateau([1.0, 0.8, 0.7, 0.69, 0.72, 0.75]) == (4, 6)
    assert rise_after_plateau([1.0, 0.8, 0.7, 0.65, 0.6]) is None  # still falling
    assert rise_after_plateau([0.5, 0.6, 0.7]) is None  # too short to say
    rows = [{"epoch": i + 1, "train_loss": v, "validation_loss": w}
            for i, (v, w) in enumerate(zip([1, .8, .7, .6, .5, .4], [1, .8, .7, .69, .72, .76]))]
    message = noise_warning(rows)
    assert message.startswith("validation loss bottomed out at epoch 4") and "lorakit lint" in message

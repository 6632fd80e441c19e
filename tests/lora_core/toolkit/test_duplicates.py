"""The duplicate search's parts: the hash-block candidate search against brute force, crowds
(many near-identical hashes) clustered instead of expanded, and the aligned detail similarity on
real pictures (a cropped copy lines up; two poses of one character do not)."""

from __future__ import annotations

import random

import pytest

np = pytest.importorskip("numpy")

from lora_core.toolkit.duplicates import CROWD, crowd_clusters, near_pairs, popcount, similarity  # noqa: E402


def brute(hashes, distance):
    return {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
            if bin(hashes[i] ^ hashes[j]).count("1") <= distance}


@pytest.mark.parametrize("distance", [0, 3, 6, 8, 12])
def test_near_pairs_match_brute_force(distance):
    rng = random.Random(distance)
    hashes = []
    for i in range(400):
        value = rng.getrandbits(64)
        hashes.append(value)
        if i % 3 == 0:  # a close variant: flip up to distance + 2 bits
            for bit in rng.sample(range(64), rng.randint(0, distance + 2)):
                value ^= 1 << bit
            hashes.append(value)
    pairs, crowds = near_pairs(np.asarray(hashes, dtype=np.uint64), distance)
    assert crowds == []
    assert {tuple(p) for p in pairs.tolist()} == brute(hashes, distance)


def test_skewed_hashes_mid_size_groups_match_brute_force():
    """Real hash distributions are skewed: many images share blocks. Groups above SMALL_GROUP are
    expanded one by one, and must find the same pairs."""
    rng = random.Random(7)
    base = rng.getrandbits(64) & ~0xFFFF
    hashes = [base | rng.getrandbits(16) for _ in range(600)] + [rng.getrandbits(64) for _ in range(200)]
    pairs, crowds = near_pairs(np.asarray(hashes, dtype=np.uint64), 6)
    assert crowds == []
    assert {tuple(p) for p in pairs.tolist()} == brute(hashes, 6)


def test_a_crowd_is_handed_back_not_expanded():
    hashes = np.asarray([0] * (CROWD * 50) + [2**64 - 1, 2**63], dtype=np.uint64)  # 3,200 identical hashes
    pairs, crowds = near_pairs(hashes, 8)
    assert len(pairs) == 0  # 5 million pairs were never built
    assert crowds and all(len(c) >= CROWD * 50 for c in crowds)  # 2**63 joins the zeros where bit 63 is not keyed
    # clustered against leaders: one comparison per member with the one leader, not 5 million
    calls = []
    crowd = np.arange(CROWD * 50)
    matched = list(crowd_clusters(crowd, np.zeros(CROWD * 50, dtype=np.uint64), 8,
                                  lambda a, b: calls.append((a, b)) or True))
    assert len(matched) == CROWD * 50 - 1 and len(calls) == CROWD * 50 - 1


def test_popcount_fallback_agrees():
    values = np.asarray([0, 1, 2**64 - 1, 0x0F0F, 2**63], dtype=np.uint64)
    assert popcount(values).tolist() == [0, 1, 64, 8, 1]


def test_similarity_lines_up_a_cropped_copy_but_not_another_pose(tmp_path):
    from conftest import load_test_module

    from lora_core.toolkit.image_facts import thumbnail

    data = load_test_module("real_images").skimage_data()
    if data is None:
        pytest.skip("scikit-image is not installed")
    Image = pytest.importorskip("PIL.Image")
    original = Image.open(data / "astronaut.png").convert("RGB")
    w, h = original.size
    original.save(tmp_path / "a.png")
    original.crop((round(w * 0.03), round(h * 0.03), w, h)).save(tmp_path / "crop.jpg", quality=88)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirror.png")  # same shape, other detail
    a, crop, mirror = (thumbnail(str(tmp_path / n)) for n in ("a.png", "crop.jpg", "mirror.png"))
    assert similarity(a, crop) > 0.6
    assert similarity(a, mirror) < 0.4


def test_crowd_members_far_in_hash_are_never_compared():
    calls = []
    hashes = np.asarray([0, 2**64 - 1, 0xFF, 2**64 - 1 - 0xFF], dtype=np.uint64)  # two pairs, far apart
    matched = list(crowd_clusters(np.arange(4), hashes, 8, lambda a, b: calls.append((a, b)) or True))
    assert matched == [(2, 0), (3, 1)] and calls == [(2, 0), (3, 1)]


def test_colour_layouts_agree_when_brighter_not_when_recoloured():
    from lora_core.toolkit.duplicates import _colours_close

    rng = np.random.default_rng(3)
    layout = rng.integers(40, 200, 48).astype(np.int16)
    brighter = np.clip(layout * 1.25, 0, 255).astype(np.int16)  # a re-export, a filter
    recoloured = layout.reshape(16, 3)[:, ::-1].reshape(48)  # red and blue swapped
    flat_red, flat_blue = np.tile([200, 30, 30], 16).astype(np.int16), np.tile([30, 30, 200], 16).astype(np.int16)
    assert _colours_close(layout, layout) and _colours_close(layout, brighter)
    assert not _colours_close(layout, recoloured) and not _colours_close(flat_red, flat_blue)


def test_flat_pictures_are_compared_by_colour_not_called_the_same(tmp_path, registry):
    """Two flat pictures of different colours have the same (empty) detail and the same hashes: they
    were reported as "the same picture" (995 of 1,000 random colour swatches, and issue 27's flat
    synthetic backgrounds), and comparing every pair of them took 18 s. Flat pictures are now the
    same only when their colours are within two levels (a re-encode), found in linear time."""
    from PIL import Image

    import lora_core
    from lora_core.testing import make_sidecar_dataset

    folder = make_sidecar_dataset(tmp_path / "ds", {f"{i}.png": f"swatch {i}" for i in range(4)})
    for name, colour in (("0.png", (200, 30, 30)), ("1.png", (190, 40, 35)), ("2.png", (30, 30, 200))):
        Image.new("RGB", (96, 96), colour).save(folder / name)
    Image.new("RGB", (96, 96), (201, 31, 29)).save(folder / "3.jpg", quality=95)  # a re-encoded copy of 0.png
    (folder / "3.png").unlink()  # 3.txt now captions 3.jpg
    found = [v for v in lora_core.lint(folder, registry=registry, isolated=True, select=["LK605"])]
    assert [(v.image, v.data.get("duplicate_of")) for v in found] == [("3.jpg", "0.png")]
    assert "same flat colour as 0.png" in found[0].message


def test_the_pair_cache_keeps_only_the_pairs_still_compared(tmp_path):
    """The verdict cache grew with every pair ever compared (55 MB, and 500 MB of memory to read,
    on a 10,000-image folder): a save keeps the verdicts this run used."""
    from lora_core.toolkit.duplicates import PairVerdicts
    from lora_core.toolkit.image_facts import read_cache

    path = tmp_path / "pairs.json"
    first = PairVerdicts(path)
    first.put("a\nb", [1, 2, 3, 4], 0.9)
    first.put("a\nc", [1, 2, 5, 6], 0.1)
    first.save()
    second = PairVerdicts(path)
    assert second.get("a\nb", [1, 2, 3, 4]) == 0.9  # c was removed from the dataset: never asked again
    second.save()
    assert read_cache(path) == {"pairs": {"a\nb": [[1, 2, 3, 4], 0.9]}}

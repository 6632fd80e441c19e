"""Finding duplicate pictures among many (LK605): a near-linear candidate search over 64-bit
perceptual hashes, and a finer comparison that confirms a candidate before it is reported.

- `near_pairs`: every pair of hashes within `distance` bits, without comparing all pairs. The hash
  is cut into `distance + 2` blocks; two hashes that differ in at most `distance` bits agree
  exactly on at least two blocks (pigeonhole), so for each pair of blocks the images are grouped
  by those bits and only images within a group are compared. Groups that are very large (a
  folder of near-identical placeholders) are never expanded into all their pairs: their members
  are handed back as crowds, to be clustered against a few representatives.
- `similarity`: how alike two grey thumbnails are once aligned: the correlation of their fine
  detail (a Laplacian), searched over small crops of either image, so a copy cropped by a few
  percent lines up with its original, while two poses of one character on the same white
  background (the same shape, different details) do not.

Needs numpy; the thumbnails come from `image_facts.thumbnail`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "COLOUR_CORRELATION",
    "COLOUR_TOLERANCE",
    "FLAT_SPREAD",
    "FLAT_TOLERANCE",
    "CROP_STEPS",
    "CROWD",
    "MAX_CROP",
    "PAIRS_PER_BATCH",
    "PAIR_CACHE_FILE",
    "ROTATIONS",
    "SAME_WITHOUT_SEARCH",
    "SIMILAR_DETAIL",
    "PairVerdicts",
    "crowd_clusters",
    "find_duplicates",
    "near_pairs",
    "popcount",
    "similarity",
]

CROWD = 1024  # a group larger than this is clustered, not expanded into all its pairs
PAIRS_PER_BATCH = 4_000_000  # pairs expanded at once (about 100 MB of index arrays at most)
SIMILAR_DETAIL = 0.5  # aligned detail correlation at or above this: the same picture
SAME_WITHOUT_SEARCH = 0.8  # ... and this high before any alignment: re-encoded or resized, no need to search
CROP_STEPS = (0.0, 0.03, 0.06)  # the coarse crop search (each side), refined by 0.01 steps
MAX_CROP = 0.08


def popcount(values: Any) -> Any:
    """The number of set bits of each value of a uint64 numpy array."""
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    return table[as_bytes].sum(axis=1)


def _blocks(distance: int) -> list[tuple[int, int]]:
    """(shift, width) of the distance + 2 blocks a 64-bit hash is cut into."""
    count = min(64, distance + 2)
    edges = [round(i * 64 / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(count)]


def near_pairs(hashes: Any, distance: int) -> tuple[Any, list[Any]]:
    """Pairs (i, j), i < j, of indexes into `hashes` (uint64) within `distance` bits, and the
    crowds: index arrays of groups too large to expand (each to be clustered by the caller; the
    pairs inside a crowd are not in the pair list, pairs between a crowd member and others are)."""
    import numpy as np

    hashes = np.asarray(hashes, dtype=np.uint64)
    count = len(hashes)
    found: list[Any] = []
    crowds: dict[bytes, Any] = {}
    if count < 2:
        return np.zeros((0, 2), dtype=np.int64), []
    def keep(first: Any, second: Any) -> None:
        close = popcount(hashes[first] ^ hashes[second]) <= distance  # most sharers of two blocks differ
        first, second = first[close], second[close]
        found.append(np.minimum(first, second) * count + np.maximum(first, second))  # one integer a pair

    blocks = _blocks(distance)
    for (shift_a, width_a), (shift_b, width_b) in itertools.combinations(blocks, 2):
        keys = (((hashes >> np.uint64(shift_a)) & np.uint64((1 << width_a) - 1)) << np.uint64(width_b)) | \
            ((hashes >> np.uint64(shift_b)) & np.uint64((1 << width_b) - 1))
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, count])
        big = sizes > CROWD
        for start, size in zip(starts[big].tolist(), sizes[big].tolist()):
            members = np.sort(order[start:start + size])
            crowds.setdefault(members.tobytes(), members)

        # Every other group is expanded into its pairs, many groups at a time (a few million
        # pairs a batch: bounded memory, no Python loop per group).
        expand = ~big & (sizes > 1)
        group_starts, group_sizes = starts[expand], sizes[expand]
        pair_counts = group_sizes * (group_sizes - 1) // 2
        batch_of = np.cumsum(pair_counts) // PAIRS_PER_BATCH
        for batch in np.unique(batch_of).tolist():
            chosen = batch_of == batch
            keep(*_group_pairs(order, group_starts[chosen], group_sizes[chosen]))
    if not found:
        return np.zeros((0, 2), dtype=np.int64), list(crowds.values())
    codes = np.unique(np.concatenate(found))
    return np.stack([codes // count, codes % count], axis=1), list(crowds.values())


def _group_pairs(order: Any, starts: Any, sizes: Any) -> tuple[Any, Any]:
    """Every pair within each group (groups are runs `starts[i]`, `sizes[i]` long of the sorted
    `order`), as two index arrays, built without a loop over groups."""
    import numpy as np

    def ranges(lengths: Any) -> Any:  # 0..n-1 for each n, concatenated
        return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)

    local = ranges(sizes)
    position = np.repeat(starts, sizes) + local
    partners = np.repeat(sizes, sizes) - 1 - local  # members after this one in its group
    first = np.repeat(position, partners)
    second = first + ranges(partners) + 1
    return order[first], order[second]


def _detail(thumb: Any) -> Any:
    return 4 * thumb[1:-1, 1:-1] - thumb[:-2, 1:-1] - thumb[2:, 1:-1] - thumb[1:-1, :-2] - thumb[1:-1, 2:]


def _correlation(a: Any, b: Any) -> float:
    import numpy as np

    a = a - a.mean()
    b = b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if norm == 0:
        return 1.0 if not a.any() and not b.any() else 0.0
    return float((a * b).sum() / norm)


def _crop(thumb: Any, box: tuple[float, float, float, float]) -> Any:
    import numpy as np
    from PIL import Image

    side = thumb.shape[0]
    if box == (0.0, 0.0, 1.0, 1.0):
        return thumb
    image = Image.fromarray(thumb, mode="F")
    return np.asarray(image.transform((side, side), Image.Transform.EXTENT, tuple(v * side for v in box),
                                      Image.Resampling.BILINEAR), dtype=np.float32)


def _score(a: Any, b: Any, box: tuple[float, float, float, float], a_is_cropped: bool) -> float:
    """The lower of two correlations at one alignment: of the fine detail (poses of one character
    share the shape, not the detail) and of the picture itself (two different pictures that share
    a texture, a halftone or a canvas weave, share detail but not the picture)."""
    x, y = (_crop(a, box), b) if a_is_cropped else (a, _crop(b, box))
    margin = 3  # the border rows hold the resampling's edge effects
    inner = (slice(margin + 1, -margin - 1), slice(margin + 1, -margin - 1))
    detail = _correlation(_detail(x)[margin:-margin, margin:-margin], _detail(y)[margin:-margin, margin:-margin])
    return min(detail, _correlation(x[inner], y[inner]))


ROTATIONS = (-3.0, -2.0, -1.0, 1.0, 2.0, 3.0)  # degrees tried when the crops do not line a pair up


def _rotated(thumb: Any, angle: float) -> Any:
    import numpy as np
    from PIL import Image

    image = Image.fromarray(thumb, mode="F")
    return np.asarray(image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=float(thumb.mean())),
                      dtype=np.float32)


def similarity(a: Any, b: Any) -> float:
    """How alike two same-size grey thumbnails are (-1..1): the lower of the correlations of their
    fine detail and of the pictures, at the best alignment found (either image cropped by up to 8%
    on any side, searched coarse to fine, or the second turned by up to 3 degrees)."""
    best = _score(a, b, (0.0, 0.0, 1.0, 1.0), True)
    if best >= SAME_WITHOUT_SEARCH:
        return _unless_edited(best, a, b)
    best_box, best_side = (0.0, 0.0, 1.0, 1.0), True
    for a_is_cropped in (True, False):
        for left, top, right, bottom in itertools.product(CROP_STEPS, repeat=4):
            if left == top == right == bottom == 0.0:
                continue
            box = (left, top, 1 - right, 1 - bottom)
            score = _score(a, b, box, a_is_cropped)
            if score > best:
                best, best_box, best_side = score, box, a_is_cropped
    # a copy turned by a degree or three (a scan, a re-shot screen): rotations of the other image
    unturned = b
    for angle in ROTATIONS:
        turned = _rotated(unturned, angle)
        score = _score(a, turned, (0.0, 0.0, 1.0, 1.0), True)
        if score > best:
            best, best_box, best_side, b = score, (0.0, 0.0, 1.0, 1.0), True, turned
    # refine: move one side at a time by 0.01 while it helps
    step = 0.01
    improved = True
    while improved:
        improved = False
        for side, delta in itertools.product(range(4), (-step, step)):
            trial = list(best_box)
            trial[side] = round(trial[side] + delta, 4)
            inset = (trial[0], trial[1], 1 - trial[2], 1 - trial[3])
            if min(inset) < 0 or max(inset) > MAX_CROP:
                continue
            score = _score(a, b, (trial[0], trial[1], trial[2], trial[3]), best_side)
            if score > best + 1e-4:
                best, best_box, improved = score, (trial[0], trial[1], trial[2], trial[3]), True
    x, y = (_crop(a, best_box), b) if best_side else (a, _crop(b, best_box))
    return _unless_edited(best, x, y)


EDITED_TILE = 0.3  # a tile that differs by this much (mean difference over the picture's contrast) ...
EDITED_CONTRAST = 3.0  # ... and this many times more than the typical tile: that part was changed
EDITED_SCORE = 0.45  # what an edited variant scores: below the default duplicate-similarity (0.5)


def _unless_edited(score: float, x: Any, y: Any) -> float:
    """`score`, unless the aligned pair differs strongly in one part and hardly elsewhere: two
    frames of one game scene with the characters moved, a render of one template with another
    prop, an illustration and its edit. A copy (re-encoded, resized, cropped) differs a little
    everywhere, never in one place (on the labelled copies of bench/bench_image_quality.py the
    worst 4x4 tile differs at most 1.9 times the median tile; edited variants 6 to 60 times)."""
    import numpy as np

    if score < 0.5 * SIMILAR_DETAIL:
        return score
    margin = 3
    x, y = x[margin:-margin, margin:-margin], y[margin:-margin, margin:-margin]
    contrast = float(x.std()) + 1e-6
    side = x.shape[0] // 4
    tiles = [float(np.abs(x[i * side:(i + 1) * side, j * side:(j + 1) * side]
                          - y[i * side:(i + 1) * side, j * side:(j + 1) * side]).mean()) / contrast
             for i in range(4) for j in range(4)]
    worst, typical = max(tiles), float(np.median(tiles))
    if worst >= EDITED_TILE and worst >= EDITED_CONTRAST * typical:
        return min(score, EDITED_SCORE)
    return score


class PairVerdicts:
    """The finer comparison's verdicts, cached beside the image facts and keyed by both files'
    (size, mtime) stamps, so a re-lint of unchanged images compares no thumbnails."""

    def __init__(self, path: Path | None):
        self.path = path
        self.changed = False
        self.entries: dict[str, list[Any]] = {}
        self.used: set[str] = set()  # the pairs this run asked about: only these are kept
        if path is not None:
            from lora_core.toolkit.image_facts import read_cache

            data = read_cache(path)  # a damaged, linked, special or foreign cache is ignored
            if isinstance(data, dict) and isinstance(data.get("pairs"), dict):
                self.entries = data["pairs"]

    def get(self, key: str, stamps: list[Any]) -> float | None:
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == stamps:
            score = entry[1]
            if isinstance(score, (int, float)) and not isinstance(score, bool) and -1.0 <= score <= 1.0:
                self.used.add(key)
                return float(score)
        return None

    def put(self, key: str, stamps: list[Any], score: float) -> None:
        self.entries[key] = [stamps, round(score, 4)]
        self.used.add(key)
        self.changed = True

    def save(self) -> None:
        """Write the verdicts this run used: pairs of images since removed, renamed or no longer
        compared are dropped, so the file tracks the dataset instead of growing with its history."""
        if self.path is None or (not self.changed and len(self.used) == len(self.entries)):
            return
        from lora_core.toolkit.image_facts import write_cache

        write_cache(self.path, {"pairs": {key: self.entries[key] for key in self.used if key in self.entries}})


def crowd_clusters(members: Any, hashes: Any, distance: int, same: Any,
                   leaders_cap: int = 256) -> Iterator[tuple[int, int]]:
    """(member, leader) for each member of a crowd that `same(member, leader)` confirms, comparing
    each member only with the crowd's leaders so far (members that matched none), in order, and
    of those only the ones within `distance` bits (`hashes`: the members' hashes, in the same
    order; one vectorised test a member): the work grows with members x distinct pictures, not
    members squared."""
    import numpy as np

    leaders: list[int] = []
    leader_hashes = np.zeros(leaders_cap, dtype=np.uint64)
    for member, value in zip(members.tolist(), np.asarray(hashes, dtype=np.uint64)):
        if leaders:
            close = np.flatnonzero(popcount(leader_hashes[:len(leaders)] ^ value) <= distance).tolist()
            match = next((leaders[k] for k in close if same(member, leaders[k])), None)
            if match is not None:
                yield member, match
                continue
        if len(leaders) < leaders_cap:
            leader_hashes[len(leaders)] = value
            leaders.append(member)


PAIR_CACHE_FILE = "pairs-v2.json"  # v2: edited variants score below the threshold
COLOUR_TOLERANCE = 24.0  # mean difference (0-255) of the 4x4 colour thumbnails: a flat red and a flat blue differ
COLOUR_CORRELATION = 0.9  # ... or the same layout, brighter or more saturated
FLAT_SPREAD = 3.0  # a 4x4 colour thumbnail whose cells differ less than this (0-255) is a flat picture ...
FLAT_TOLERANCE = 2.0  # ... and two flat pictures are the same only this close (a re-encode moves a level or two)
FLAT_DETAIL = 4.0  # ... and flat means no detail either (variance of the Laplacian; a texture photo: 50 and more)


def _flat(a: Any, laplacian: float | None) -> bool:
    """True for a picture of one colour, without detail (a texture whose 4x4 average is even, grass
    or gravel, has detail and is not flat): the detail comparison has nothing to go on."""
    import numpy as np

    if a is None or laplacian is None or laplacian >= FLAT_DETAIL:
        return False
    cells = np.asarray(a, dtype=np.float32).reshape(-1, 3)
    return bool(len(cells)) and float(np.abs(cells - cells.mean(axis=0)).max()) < FLAT_SPREAD


def _flat_verdict(a: Any, b: Any) -> float:
    """For two flat pictures: 1.0 when their colours are nearly equal, else -1.0 (a flat red and a
    flat maroon, two colour swatches, two blank placeholders of other tints are different pictures)."""
    import numpy as np

    if len(a) != len(b):
        return -1.0
    return 1.0 if float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean()) <= FLAT_TOLERANCE \
        else -1.0


def _colours_close(a: Any, b: Any) -> bool:
    """The 4x4 colour layouts agree: nearly equal, or the same layout brighter, darker or more
    saturated (correlated), which a re-export or a filter makes. Two flat images of different
    colours (whose detail says nothing) differ in both ways; so does a recoloured version."""
    import numpy as np

    if a is None or b is None or len(a) != len(b) or not len(a):
        return False
    if float(np.abs(a - b).mean()) <= COLOUR_TOLERANCE:
        return True
    x, y = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return norm > 0 and float((x * y).sum()) / norm >= COLOUR_CORRELATION


def find_duplicates(dataset: Any, readable: list[tuple[Any, Mapping[str, Any]]], distance: int, threshold: float,
                    cache: bool = True) -> list[tuple[Any, Any, str]]:
    """(record, earlier record, message) for every image that is the same picture as an earlier
    one, in dataset order. `readable`: (record, pixel facts) of the decodable images."""
    import os

    import numpy as np

    from lora_core.toolkit.image_facts import CACHE_FOLDER, thumbnail

    found: dict[int, tuple[int, str]] = {}
    representatives: list[int] = []
    first_with: dict[str, int] = {}
    for index, (_, facts) in enumerate(readable):
        content = facts.get("content")
        if content is None:
            continue
        if content in first_with:
            found[index] = (first_with[content], "has identical pixels to {original}")
        else:
            first_with[content] = index
            representatives.append(index)

    verdicts = PairVerdicts(Path(dataset.root) / CACHE_FOLDER / PAIR_CACHE_FILE if cache else None)
    thumbs: dict[int, Any] = {}
    colour_arrays: dict[int, Any] = {}

    def colours(index: int) -> Any:
        if index not in colour_arrays:
            value = readable[index][1].get("colours")
            colour_arrays[index] = None if value is None else np.asarray(value, dtype=np.int16)
        return colour_arrays[index]

    decided: dict[tuple[int, int], float] = {}

    def is_flat(index: int) -> bool:
        return _flat(colours(index), readable[index][1].get("laplacian"))

    def stamp(index: int) -> list[int]:
        """The file's [size, mtime]: as collect() read them when the facts carry them (no second
        stat), else from the file."""
        record, facts = readable[index]
        if hasattr(facts, "stamp"):
            return list(facts.stamp)
        try:
            info = os.stat(str(record.image_path))
            return [info.st_size, info.st_mtime_ns]
        except (OSError, ValueError):
            return [-1, -1]

    def score(a: int, b: int) -> float:
        """The aligned detail similarity of two images (cached), or -1 when their colours differ."""
        a, b = min(a, b), max(a, b)
        if (a, b) in decided:
            return decided[(a, b)]
        if is_flat(a) or is_flat(b):  # no detail to compare: the colours alone decide, tightly
            flat = _flat_verdict(colours(a), colours(b)) if is_flat(a) and is_flat(b) else -1.0
            decided[(a, b)] = flat
            return flat
        if not _colours_close(colours(a), colours(b)):
            decided[(a, b)] = -1.0
            return -1.0
        key = f"{readable[a][0].image}\n{readable[b][0].image}"
        stamps = stamp(a) + stamp(b)
        value = verdicts.get(key, stamps)
        if value is None:
            for index in (a, b):
                if index not in thumbs:
                    thumbs[index] = thumbnail(str(readable[index][0].image_path))
            value = -1.0 if thumbs[a] is None or thumbs[b] is None else similarity(thumbs[a], thumbs[b])
            verdicts.put(key, stamps, value)
        decided[(a, b)] = value
        return value

    def confirm(later: int, earlier: int, bits: int | None) -> None:
        value = score(later, earlier)
        if value < threshold:
            return
        if later not in found or found[later][0] > earlier:
            measured = f"hash distance {bits}/64, " if bits is not None else ""
            found[later] = (earlier, f"is the same picture as {{original}} ({measured}detail similarity {value:.2f})")

    # Flat pictures (one colour: blank placeholders, swatches, synthetic backgrounds) have no detail
    # for the hashes or the detail test to tell apart: every pair would be a candidate and "alike".
    # They are compared by colour alone, each with the earlier flat pictures of neighbouring colour
    # cells: linear in their number.
    flat_cells: dict[tuple[int, ...], list[int]] = {}
    pictured = []
    for index in representatives:
        value = colours(index)
        if not is_flat(index):
            pictured.append(index)
            continue
        mean = np.asarray(value, np.float32).reshape(-1, 3).mean(axis=0)
        cell = tuple(int(c) for c in (mean // (2 * FLAT_TOLERANCE)))
        match = None
        for offset in itertools.product((-1, 0, 1), repeat=3):
            for earlier in flat_cells.get(tuple(c + o for c, o in zip(cell, offset)), ()):
                if _flat_verdict(colours(earlier), value) == 1.0 and (match is None or earlier < match):
                    match = earlier
        if match is not None:
            found[index] = (match, "is the same flat colour as {original}")
        else:
            flat_cells.setdefault(cell, []).append(index)
    representatives = pictured

    reps = np.asarray(representatives, dtype=np.int64)
    for family in ("dhash", "phash"):
        values = [readable[i][1].get(family) for i in representatives]
        known = np.asarray([v is not None for v in values], dtype=bool)
        if known.sum() < 2:
            continue
        indexes = reps[known]
        hashes = np.asarray([values[k] for k in np.flatnonzero(known)], dtype=np.uint64)
        pairs, crowds = near_pairs(hashes, distance)
        for first, second in pairs.tolist():
            a, b = int(indexes[first]), int(indexes[second])
            confirm(max(a, b), min(a, b), int(popcount(hashes[[first]] ^ hashes[[second]])[0]))
        position = {int(i): k for k, i in enumerate(indexes.tolist())} if crowds else {}
        for crowd in crowds:
            ordered = np.sort(crowd)  # positions in `indexes` (increasing: dataset order)
            clustered = crowd_clusters(indexes[ordered], hashes[ordered], distance,
                                       lambda member, leader: score(member, leader) >= threshold)
            for member, leader in clustered:
                bits = int(popcount(hashes[[position[member]]] ^ hashes[[position[leader]]])[0])
                confirm(max(member, leader), min(member, leader), bits)
    verdicts.save()
    result = []
    for index in sorted(found):
        original, message = found[index]
        record, original_record = readable[index][0], readable[original][0]
        result.append((record, original_record, message.format(original=original_record.image)))
    return result

"""LK6xx: the images themselves. Text rules only see captions; a truncated file, a thumbnail, a
rotated photo or the same picture twice hurt a LoRA just as much.

One analysis per image serves every rule: the header (size, mode, EXIF orientation) is read
for all of them; pixels are decoded only for the rules that need them (LK601 truncation, LK604
blur, LK605 duplicates), in a process pool for large datasets. Results are cached in
`<dataset>/.lorakit_cache/images-v4.json`, keyed by path, size and modification time, so
re-linting unchanged images does not open them. Needs Pillow and numpy, not torch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from lora_core import RuleOption, Severity
from lora_core.config import Bool, ConfigKey, ConfigSection, Float, Int
from lora_core.datasets.model import Dataset, Record
from lora_core.rules import LintContext, Rule, RulePack
from lora_core.toolkit.duplicates import SIMILAR_DETAIL
from lora_core.toolkit.image_facts import DEFAULT_MAX_PIXELS, collect
from lora_core.violations import Violation

DEFAULT_MAX_BLUR = 0.38

IMAGES_SECTION = ConfigSection(
    "images",
    "Image checks (LK6xx).",
    [
        ConfigKey("min-size", Int(0), 0, "Shortest side below this is too small (0: [train] resolution, else 512)."),
        ConfigKey("max-aspect", Float(1.0), 3.0, "Longest / shortest side above this is extreme."),
        ConfigKey("max-blur", Float(0.0), DEFAULT_MAX_BLUR,
                  "Blur effect (0 crisp .. 1 no detail) of the sharpest part of the image, at 512 px (a larger "
                  "image: at up to 1024 px when sharper there), above which it is blurry."),
        ConfigKey("blur-threshold", Float(0.0), 0.0,
                  "Legacy measure: when set, the variance of the Laplacian (grey levels, 512 px) below this is "
                  "blurry, instead of max-blur (it punishes flat art and soft backgrounds)."),
        ConfigKey("duplicate-distance", Int(0, 16), 8,
                  "Perceptual hashes (dHash or pHash) this close (bits of 64) are compared in detail."),
        ConfigKey("duplicate-similarity", Float(0.0, 1.0), SIMILAR_DETAIL,
                  "Correlation of fine detail, once aligned, at or above which two images are the same picture."),
        ConfigKey("max-pixels", Int(1), DEFAULT_MAX_PIXELS,
                  "Images with more pixels are refused without decoding (decompression bombs)."),
        ConfigKey("cache", Bool(), True, "Cache results in <dataset>/.lorakit_cache (keyed by path, size, mtime)."),
        ConfigKey("workers", Int(0), 0, "Processes decoding images (0: one per CPU, up to 8)."),
    ],
)

def _settings(ctx: LintContext) -> dict[str, Any]:
    return ctx.section("images")


def image_facts(ctx: LintContext, pixels: bool) -> dict[str, Mapping[str, Any]]:
    """Facts for every image of the dataset, computed once per lint run."""
    if not pixels:  # the pixel analysis, when already done, has the header facts too
        done = ctx.memoized(("lk6-facts", True))
        if done is not None:
            return done
    return ctx.memo(("lk6-facts", pixels), lambda: collect(ctx.dataset, pixels, _settings(ctx)))


def _records_with(ctx: LintContext, pixels: bool) -> Iterable[tuple[Record, Mapping[str, Any]]]:
    facts = image_facts(ctx, pixels)
    seen: set[str] = set()
    for record in ctx.dataset.records:
        found = facts.get(record.image) if record.image is not None else None
        # An image listed twice (two rows; one folder named twice by a trainer config) is judged
        # once, at its first listing: LK006 reports the second listing, and it is not its own duplicate.
        key = record.image_path or record.image
        if found is not None and key is not None and key not in seen:
            seen.add(key)
            yield record, found


class ImageRule(Rule):
    shares = "images"
    relint_on_edit = False  # the pictures do not change when a caption does
    cost = 1  # the decoding is charged to LK601, which always runs first in the shared group

    def readable(self, ctx: LintContext, pixels: bool = False) -> Iterable[tuple[Record, Mapping[str, Any]]]:
        for record, facts in _records_with(ctx, pixels):
            if not facts.get("error") and "width" in facts:
                yield record, facts


class ImageUnreadable(Rule):
    """## What it does
    Reports image files that cannot be decoded: truncated or corrupt files, files that are not
    images, and images so large (`[images] max-pixels`) that decoding them is refused.

    ## Why it matters
    Trainers either crash on them hours into a run, or silently skip them, so the caption trains
    nothing. An enormous image is also the shape of a decompression bomb.

    ## Example
    `img_017.png` cut short by an interrupted copy.

    ## Fix
    Re-export or re-copy the image, or remove the row.
    """

    relint_on_edit = False  # the pictures do not change when a caption does
    code = "LK601"
    name = "image-unreadable"
    summary = "A truncated, corrupt or non-image file, or a decompression-bomb-sized image"
    severity = Severity.ERROR
    shares = "images"
    cost = 20
    options = (RuleOption("images.max-pixels", "pixel count refused without decoding"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for record, facts in _records_with(ctx, pixels=True):
            if facts.get("error"):
                yield self.at_image(record, f"{record.image}: {facts['error']}")


_ASSUMED_TOLERANCE = 0.8  # of the assumed 512 px: what an unpinned resolution reports


def min_size(ctx: LintContext) -> int:
    configured = int(_settings(ctx).get("min-size", 0) or 0)
    if configured:
        return configured
    return int(ctx.section("train").get("resolution", 0) or 0) if ctx.has_section("train") else 512


class ImageTooSmall(ImageRule):
    """## What it does
    Reports images whose shorter side is below `[images] min-size` (default: `[train] resolution`
    when set, else 512). Reads the file header only.

    ## Why it matters
    The trainer upscales small images: the LoRA learns blur and JPEG blocks as part of the style.

    ## Example
    A 300x300 thumbnail in a 512 px dataset.

    ## Fix
    Replace it with a larger original, or drop it.
    """

    code = "LK602"
    name = "image-too-small"
    summary = "Shorter side below [images] min-size (default: the training resolution, else 512)"
    severity = Severity.WARNING
    options = (RuleOption("images.min-size", "minimum shorter side in pixels"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        limit = min_size(ctx)
        readable = list(self.readable(ctx))
        # Bucketing trainers (kohya, OneTrainer, ai-toolkit, SimpleTuner) resize each image to a
        # bucket of about resolution² pixels whatever its shape: an image is upscaled when its
        # area is below that, not when one side is (a 1024x400 still is not upscaled at 512).
        # Pinned by a key that is set (an empty [train] table, as `lorakit init` writes, pins nothing).
        pinned = ctx.has_key("images", "min-size") or ctx.has_key("train", "resolution")
        # With the resolution unknown (512 assumed), an image a few percent short of it is not
        # reported: a 5% upscale trains no visible blur.
        floor = limit if pinned else limit * _ASSUMED_TOLERANCE
        small = [(record, facts) for record, facts in readable
                 if (facts["width"] * facts["height"]) ** 0.5 < floor]
        if not pinned and len(readable) >= 10 and len(small) >= 0.9 * len(readable):
            yield self._set_wide(ctx, readable, small, limit)
            return
        for record, facts in small:
            width, height = facts["width"], facts["height"]
            side = int((width * height) ** 0.5)
            yield self.at_image(record, f"{record.image} is {width}x{height} ({side} px on a side for its area) < "
                                f"{limit}: trained at {limit} it is upscaled and trains blur (kohya keeps small "
                                "images at their size only with --bucket_no_upscale)", width=width, height=height)

    def _set_wide(self, ctx: LintContext, readable: list[tuple[Record, Mapping[str, Any]]],
                  small: list[tuple[Record, Mapping[str, Any]]], limit: int) -> Violation:
        """Nearly every image is small: the set is made at that size (a deliberate low-resolution
        run), or upscaled as a whole; one finding, never one per image."""
        sizes = Counter((facts["width"], facts["height"]) for _, facts in small)
        (width, height), count = sizes.most_common(1)[0]
        shorter = min(width, height)
        record = small[0][0]
        violation = self.at(ctx.dataset.location, f"{len(small)} of {len(readable)} images are smaller than "
                            f"{limit} px on a side (most common size {width}x{height}, {count} images; e.g. "
                            f"`{record.image}`): trained at {limit} they are all upscaled. If the set is meant to "
                            f"train at its own size (e.g. --resolution {shorter}), say so with [train] resolution "
                            f"= {shorter} (or [images] min-size)", images=len(small), set_wide=True)
        violation.severity = Severity.INFO  # a set made at one size is most likely made for it
        return violation


class ExtremeAspectRatio(ImageRule):
    """## What it does
    Reports images whose longer side is more than `[images] max-aspect` (default 3) times the
    shorter one. Reads the file header only.

    ## Why it matters
    Buckets stop at about 4:1 and square training crops most of the picture away: the caption
    then describes things the model never sees.

    ## Example
    A 3000x600 panorama.

    ## Fix
    Crop it into several images with their own captions.
    """

    code = "LK603"
    name = "extreme-aspect-ratio"
    summary = "Aspect ratio beyond [images] max-aspect (default 3.0)"
    severity = Severity.WARNING
    options = (RuleOption("images.max-aspect", "largest longer/shorter side ratio"),)

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        limit = float(_settings(ctx).get("max-aspect", 3.0))
        for record, facts in self.readable(ctx):
            ratio = max(facts["width"], facts["height"]) / max(1, min(facts["width"], facts["height"]))
            if ratio > limit:
                yield self.at_image(record, f"{record.image} is {facts['width']}x{facts['height']} (aspect "
                                    f"{ratio:.1f}:1 > {limit:g}:1); crops will cut what the caption describes",
                                    ratio=round(ratio, 2))


class ImageBlurry(ImageRule):
    """## What it does
    Reports images whose sharpest part is blurry: out of focus, shaken (motion blur in any
    direction) or blown up from a thumbnail. The measure is the *blur effect* (Crete-Roffet):
    re-blur the picture (a 9-pixel box at 512 px) and see how much of its edge contrast survives;
    a crisp edge changes a lot, a blurred one hardly at all. It is a ratio, 0 (crisp) to 1 (no
    detail left), so it does not depend on how much of the picture has edges:
    - it is taken on 64 px tiles, and only the most detailed tenth of them counts, and of those
      the sharpest: a subject in focus in front of a soft background (bokeh) is sharp;
    - flat areas (the white of a logo, a cel-shaded fill, a sky) have no edges and are not judged,
      so illustrations, line art and pixel art are judged by their outlines;
    - it is taken in four directions (rows, columns, both diagonals) and the picture is as blurry
      as its blurriest direction: a camera shake leaves the edges along it crisp;
    - a large image that reads soft at 512 px is measured again at up to 1024 px, and the sharper
      reading counts: a shallow depth-of-field or high-key portrait with sharp eyes is sharp
      (0.40-0.42 at 512 px, 0.25-0.31 at 1024 px), while blur and upscaling stay (0.56-0.76).

    An image with more blur effect than `[images] max-blur` (default 0.38) is reported; on the
    labelled real pictures of bench/bench_image_quality.py, sharp photographs and flat art measure
    0.11-0.33 and Gaussian, motion and upscaling blur that a 512 px training crop would show
    0.40-0.90. A flat image (no tile with detail) is not judged; a smooth gradient with no edge
    anywhere reads as blurry, as there is nothing sharp in it to find.
    `[images] blur-threshold`, when set, brings back the older variance-of-the-Laplacian measure.

    ## Why it matters
    Out-of-focus, shaken or upscaled images teach the LoRA softness as part of the subject or
    style, unless the caption says "blurry".

    ## Example
    A shaky night shot of the neon street; a 128 px thumbnail saved again at 1024 px.

    ## Fix
    Replace it, or caption the blur ("motion blur") so it is not learned as the style.
    """

    code = "LK604"
    name = "image-blurry"
    summary = "Blurry even where it is sharpest (out of focus, shaken or upscaled)"
    severity = Severity.WARNING
    options = (RuleOption("images.max-blur", "largest blur effect of the sharpest part (0-1)"),
               RuleOption("images.blur-threshold", "legacy: minimum variance of the Laplacian"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        settings = _settings(ctx)
        legacy = float(settings.get("blur-threshold", 0.0) or 0.0)
        limit = float(settings.get("max-blur", DEFAULT_MAX_BLUR))
        for record, facts in self.readable(ctx, pixels=True):
            if legacy:
                score = facts.get("laplacian")
                blurry = score is not None and score < legacy
                measured = f"variance of the Laplacian {score:.1f} < {legacy:g}" if blurry else ""
            else:
                score = facts.get("blur")
                blurry = score is not None and score > limit
                measured = f"blur effect {score:.2f} > {limit:g} where it is sharpest" if blurry else ""
            if blurry:
                caption = (record.caption or "").lower()
                if "blur" in caption or "bokeh" in caption or "out of focus" in caption:
                    continue  # the caption already names it
                yield self.at_image(record, f"{record.image} looks blurry ({measured})", score=round(score, 3))


class DuplicateImage(ImageRule):
    """## What it does
    Reports images that are the same picture as an earlier one: identical pixels, or the same
    picture re-encoded, resized or cropped by a few percent. Different pictures of one subject
    (four poses of a character on a white background, two shots of a cat) are not duplicates.

    How: identical pixels are grouped first (one hash of the decoded pixels). Then candidates are
    images whose 64-bit perceptual hashes (dHash or pHash) differ in at most
    `[images] duplicate-distance` bits (default 8), found by hash blocks without comparing all
    pairs. A candidate is confirmed only when the two pictures' fine detail (a Laplacian of 64 px
    grey thumbnails) correlates at `[images] duplicate-similarity` or more (default 0.5) once
    aligned, searching crops of up to 8% of either image; similar shapes with different detail
    (poses) correlate far less (at most 0.37 on the labelled real pictures, copies at least 0.69).
    Verdicts are cached, so a re-lint compares nothing again.

    ## Why it matters
    A duplicate doubles that image's weight in training, and two different captions for the same
    pixels teach the model that the words do not matter.

    ## Example
    `neon_03.png` and `neon_03_small.jpg`.

    ## Fix
    Keep one copy (use kohya repeats when weighting is intended).
    """

    code = "LK605"
    name = "duplicate-image"
    summary = "Identical pixels, or the same picture re-encoded, resized or slightly cropped"
    severity = Severity.WARNING
    options = (RuleOption("images.duplicate-distance", "perceptual-hash bits that may differ for a candidate"),
               RuleOption("images.duplicate-similarity", "aligned detail correlation that confirms a candidate"))

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        from lora_core.toolkit.duplicates import find_duplicates

        settings = _settings(ctx)
        readable = list(self.readable(ctx, pixels=True))
        found = find_duplicates(dataset, readable, distance=int(settings.get("duplicate-distance", 8)),
                                threshold=float(settings.get("duplicate-similarity", SIMILAR_DETAIL)),
                                cache=bool(settings.get("cache", True)))
        for record, original, message in found:
            yield self.at_image(record, f"{record.image} {message}", duplicate_of=original.image)


class ExifRotated(ImageRule):
    """## What it does
    Reports images with an EXIF orientation other than "normal".

    ## Why it matters
    Viewers rotate such photos, so they look right; kohya and several trainers read the raw pixels
    and train on the sideways image, with a caption that describes it upright.

    ## Example
    A phone photo stored landscape with "rotate 90" in its EXIF data.

    ## Fix
    Re-save the image with the rotation applied (e.g. `exiftran -ai`, or PIL's `ImageOps.exif_transpose`).
    """

    code = "LK606"
    name = "exif-rotated"
    summary = "EXIF orientation set (kohya ignores it: the model trains on a rotated image)"
    severity = Severity.INFO

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        names = {3: "rotated 180", 6: "rotated 90 clockwise", 8: "rotated 90 counter-clockwise", 2: "mirrored",
                 4: "mirrored vertically", 5: "mirrored and rotated", 7: "mirrored and rotated"}
        for record, facts in self.readable(ctx):
            orientation = facts.get("orientation", 1)
            if orientation not in (0, 1):
                yield self.at_image(record, f"{record.image} has EXIF orientation {orientation} "
                                    f"({names.get(orientation, 'unknown')}): trainers that ignore EXIF see it "
                                    "sideways", orientation=orientation)


class UnusualImageMode(ImageRule):
    """## What it does
    Reports images in a mode other than 8-bit RGB or greyscale: CMYK, palette, 16/32-bit, or with
    an alpha channel.

    ## Why it matters
    Conversion to RGB is left to each trainer: CMYK colours shift, palettes band, and transparent
    areas become black or white depending on the tool.

    ## Example
    A PNG logo with transparency in a dataset of photos.

    ## Fix
    Convert to 8-bit RGB yourself, flattening transparency onto the background you want.
    """

    code = "LK607"
    name = "unusual-image-mode"
    summary = "CMYK, palette, 16-bit or alpha channel"
    severity = Severity.INFO

    def check_dataset(self, dataset: Dataset, ctx: LintContext) -> Iterable[Violation]:
        for record, facts in self.readable(ctx):
            mode = facts.get("mode", "RGB")
            reason = None
            if mode == "CMYK":
                reason = "CMYK colours shift when a trainer converts them"
            elif mode in ("P", "PA"):
                reason = "palette image (alpha too)" if mode == "PA" or facts.get("transparency") else "palette image"
            elif mode.startswith("I") or mode == "F":
                reason = "16/32-bit samples, reduced to 8 bits by each trainer in its own way"
            elif mode in ("RGBA", "LA", "RGBa", "La"):
                reason = "alpha channel: transparent areas become black or white depending on the trainer"
            if reason:
                yield self.at_image(record, f"{record.image} is {mode}: {reason}", mode=mode)


RULES = (ImageUnreadable, ImageTooSmall, ExtremeAspectRatio, ImageBlurry, DuplicateImage, ExifRotated,
         UnusualImageMode)
plugin = RulePack(RULES, config=[IMAGES_SECTION])

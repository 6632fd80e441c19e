"""Real pictures, labelled, for the image rules (LK604 blur, LK605 duplicates): the photographs,
flat art and the real motion-blurred photo bundled in scikit-image's data folder, and the
DreamBooth photographs in ../shared/data/dreambooth when that folder is there (users who clone the
project do not have it; everything here works without it, on fewer pictures).

`build(folder)` writes two labelled sets from them, with planted problems made here, seeded:
- `duplicates/`: every original once (distinct pictures: the four poses of one cartoon character,
  five shots of one cat, are *not* duplicates) and one planted copy of each, the kind cycling through
  a JPEG re-encode, a half-size resize, a slight crop of two sides, and a slight centre crop;
- `blur/`: every sharp original, one blurred copy of each (Gaussian, motion or upscaled from a
  thumbnail, cycling; the strength is set for the picture seen at 512 px, the size LK604 judges),
  and scikit-image's real motion-blurred photo.
`labels.json` in each set says what is true. Used by tests/lint_rules/test_images_real.py and
bench/bench_image_quality.py (precision and recall, side by side with other libraries).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DREAMBOOTH = REPO.parent / "shared" / "data" / "dreambooth"

# scikit-image's bundled pictures, by what they are. Left out: cell, moon, retina and microaneurysms
# (microscopy, a low-contrast moon and a fundus photo are soft by nature: no label would be fair),
# motorcycle_right (a stereo pair with motorcycle_left: neither clearly a duplicate nor not), and
# the tiny or multi-page test files.
SKIMAGE_SHARP_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
                        "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
                        "page.png", "rocket.jpg", "text.png")
SKIMAGE_FLAT_ART = ("chessboard_RGB.png", "color.png", "horse.png", "logo.png", "phantom.png")
SKIMAGE_REAL_BLUR = ("clock_motion.png",)

DUPLICATE_KINDS = ("reencoded", "half-size", "cropped-corner", "cropped-centre")
BLUR_KINDS = ("gaussian", "motion", "upscaled")


def skimage_data() -> Path | None:
    try:
        import skimage
    except ImportError:
        return None
    folder = Path(skimage.__file__).parent / "data"
    return folder if (folder / "astronaut.png").is_file() else None


def originals() -> list[tuple[str, Path, str]]:
    """(name, path, kind) for every real picture available: kind is photo, flat or blurry."""
    found: list[tuple[str, Path, str]] = []
    data = skimage_data()
    if data is not None:
        for kind, names in (("photo", SKIMAGE_SHARP_PHOTOS), ("flat", SKIMAGE_FLAT_ART),
                            ("blurry", SKIMAGE_REAL_BLUR)):
            found += [(f"skimage-{Path(name).stem}", data / name, kind) for name in names if (data / name).is_file()]
    if DREAMBOOTH.is_dir():
        for subject in sorted(p for p in DREAMBOOTH.iterdir() if p.is_dir()):
            kind = "flat" if subject.name == "red_cartoon" else "photo"
            found += [(f"{subject.name}-{p.stem}", p, kind) for p in sorted(subject.glob("*.jpg"))]
    return found


def _rgb(path: Path) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        if image.mode in ("RGBA", "LA", "P"):  # flatten transparency on white, as an artist would export it
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, "white")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image.convert("RGB")


def _save(image: Any, path: Path, quality: int = 92) -> None:
    if path.suffix == ".jpg":
        image.save(path, quality=quality)
    else:
        image.save(path, compress_level=1)  # fast: these are large and written once


def plant_copy(image: Any, kind: str) -> Any:
    """A copy of `image` that is still the same picture."""
    from PIL import Image

    width, height = image.size
    if kind == "half-size":
        return image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    if kind == "cropped-corner":  # 3% off the left and the top
        return image.crop((round(width * 0.03), round(height * 0.03), width, height))
    if kind == "cropped-centre":  # 2.5% off every side
        return image.crop((round(width * 0.025), round(height * 0.025), round(width * 0.975), round(height * 0.975)))
    return image.copy()  # reencoded: saved as a JPEG of lower quality by the caller


def motion_kernel(length: int, angle_degrees: float) -> Any:
    import numpy as np

    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    angle = np.deg2rad(angle_degrees)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, length * 4):
        x, y = centre + t * np.cos(angle), centre + t * np.sin(angle)
        kernel[int(round(y)), int(round(x))] += 1
    return kernel / kernel.sum()


def plant_blur(image: Any, kind: str, seed: int) -> Any:
    """A blurred copy of `image`, as blurry as a bad training image looks at 512 px."""
    import numpy as np
    from PIL import Image, ImageFilter

    width, height = image.size
    scale = max(width, height) / 512  # the strength is meant for the picture seen at 512 px
    if kind == "gaussian":
        return image.filter(ImageFilter.GaussianBlur(2.5 * scale))
    if kind == "upscaled":  # a thumbnail blown up: a quarter of the 512 px view
        small = image.resize((max(1, round(width / (4 * scale))), max(1, round(height / (4 * scale)))),
                             Image.Resampling.BICUBIC)
        return small.resize((width, height), Image.Resampling.BICUBIC)
    from scipy.signal import fftconvolve

    kernel = motion_kernel(max(3, round(14 * scale)), angle_degrees=(seed * 37) % 180)
    margin = kernel.shape[0]
    array = np.pad(np.asarray(image, dtype=np.float32), ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    blurred = np.stack([fftconvolve(array[..., c], kernel, mode="same") for c in range(3)], axis=-1)
    blurred = blurred[margin:-margin, margin:-margin]
    return Image.fromarray(np.clip(blurred + 0.5, 0, 255).astype(np.uint8), "RGB")


def build(folder: Path) -> dict[str, Path]:
    """Write `duplicates/` and `blur/` under `folder` (once: kept when complete), each with
    `labels.json` and a `metadata.csv` that gives every image a plain caption."""
    sources = originals()
    marker = folder / f".complete-{len(sources)}"
    sets = {"duplicates": folder / "duplicates", "blur": folder / "blur"}
    if marker.exists():
        return sets
    for path in sets.values():
        path.mkdir(parents=True, exist_ok=True)
        for old in path.iterdir():
            if old.is_file():
                old.unlink()
    groups: list[list[str]] = []
    blur_labels: dict[str, str] = {}
    for index, (name, path, kind) in enumerate(sources):
        image = _rgb(path)
        if kind != "blurry":
            original = f"{name}.png"
            _save(image, sets["duplicates"] / original)
            copy_kind = DUPLICATE_KINDS[index % len(DUPLICATE_KINDS)]
            copy = f"{name}-{copy_kind}.jpg"
            _save(plant_copy(image, copy_kind), sets["duplicates"] / copy, quality=60 if copy_kind == "reencoded"
                  else 88)
            groups.append([original, copy])
            _save(image, sets["blur"] / original)
            blur_labels[original] = f"sharp {kind}"
            blur_kind = BLUR_KINDS[index % len(BLUR_KINDS)]
            blurred = f"{name}-{blur_kind}.png"
            _save(plant_blur(image, blur_kind, index), sets["blur"] / blurred)
            blur_labels[blurred] = f"blurry {blur_kind}"
        else:
            _save(image, sets["blur"] / f"{name}.png")
            blur_labels[f"{name}.png"] = "blurry real"
    (sets["duplicates"] / "labels.json").write_text(json.dumps({"groups": groups}, indent=1), encoding="utf-8")
    (sets["blur"] / "labels.json").write_text(json.dumps(blur_labels, indent=1), encoding="utf-8")
    for path in sets.values():
        names = sorted(n for n in os.listdir(path) if n.endswith((".png", ".jpg")))
        rows = ["file_name,text", *(f"{n},a picture" for n in names)]
        (path / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    marker.write_text("ok", encoding="utf-8")
    return sets


# Harder copies, for the robustness table of bench/bench_image_quality.py (not a target: LK605
# promises re-encoded, resized and slightly cropped copies; the rest shows where it stops).
VARIANTS = ("brighter", "more-contrast", "jpeg-q30", "quarter-size", "watermark", "rotated-2deg", "greyscale",
            "cropped-5pct", "saturated")


def plant_variant(image: Any, kind: str) -> Any:
    from PIL import Image, ImageDraw, ImageEnhance

    if kind == "brighter":
        return ImageEnhance.Brightness(image).enhance(1.25)
    if kind == "more-contrast":
        return ImageEnhance.Contrast(image).enhance(1.3)
    if kind == "saturated":
        return ImageEnhance.Color(image).enhance(1.4)
    if kind == "quarter-size":
        return image.resize((max(1, image.width // 4), max(1, image.height // 4)), Image.Resampling.LANCZOS)
    if kind == "watermark":
        marked = image.copy()
        ImageDraw.Draw(marked).text((marked.width * 0.6, marked.height * 0.9), "@somebody 2024", fill=(255, 255, 255))
        return marked
    if kind == "rotated-2deg":
        return image.rotate(2, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    if kind == "greyscale":
        return image.convert("L").convert("RGB")
    if kind == "cropped-5pct":
        w, h = image.size
        return image.crop((round(w * 0.05), round(h * 0.05), round(w * 0.95), round(h * 0.95)))
    return image.copy()  # jpeg-q30: the caller saves it at quality 30


def build_variants(folder: Path) -> Path:
    """`folder/variants/`: every original once and one harder copy of it (VARIANTS, cycling)."""
    sources = [s for s in originals() if s[2] != "blurry"]
    target = folder / "variants"
    marker = target / f".complete-{len(sources)}"
    if marker.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    groups = []
    for index, (name, path, _) in enumerate(sources):
        image = _rgb(path)
        _save(image, target / f"{name}.png")
        kind = VARIANTS[index % len(VARIANTS)]
        _save(plant_variant(image, kind), target / f"{name}-{kind}.jpg", quality=30 if kind == "jpeg-q30" else 90)
        groups.append([f"{name}.png", f"{name}-{kind}.jpg"])
    (target / "labels.json").write_text(json.dumps({"groups": groups}, indent=1), encoding="utf-8")
    names = sorted(n for n in os.listdir(target) if n.endswith((".png", ".jpg")))
    (target / "metadata.csv").write_text("file_name,text\n" + "".join(f"{n},a picture\n" for n in names),
                                         encoding="utf-8")
    marker.write_text("ok", encoding="utf-8")
    return target


def duplicate_truth(folder: Path) -> list[set[str]]:
    return [set(group) for group in json.loads((folder / "labels.json").read_text(encoding="utf-8"))["groups"]]


def blur_truth(folder: Path) -> dict[str, bool]:
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    return {name: label.startswith("blurry") for name, label in labels.items()}

"""The synthetic world of the outcome experiment: 64 px pictures of one shape, in one colour, on one
background, drawn in one of four styles, with their ground truth. Deterministic: a picture is a
function of its (shape, colour, background, style, seed).

Three styles (`flat`, `striped`, `shadow`) are what the base model learns; the fourth, `outline`,
is held out: it is what the LoRAs learn, under the trigger word, from 48 pictures.
"""

from __future__ import annotations

import itertools
import random
import zlib
from dataclasses import dataclass

import numpy as np

SIZE = 64
SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {"red": (215, 40, 40), "green": (40, 165, 60), "blue": (45, 80, 225), "yellow": (235, 200, 40)}
BACKGROUNDS = {"white": (238, 238, 238), "black": (22, 22, 22), "gray": (125, 125, 125)}
BASE_STYLES = ("flat", "striped", "shadow")
HELD_OUT_STYLE = "outline"
STYLES = (*BASE_STYLES, HELD_OUT_STYLE)
TRIGGER = "zqx"


@dataclass(frozen=True)
class Scene:
    """What a picture shows; `seed` moves and sizes the shape."""

    shape: str
    colour: str
    background: str
    style: str
    seed: int = 0

    def describe(self) -> str:
        """The subject, as a careful captioner writes it: `a red circle on a white background`."""
        return f"a {self.colour} {self.shape} on a {self.background} background"

    @property
    def labels(self) -> tuple[int, int, int, int]:
        return (SHAPES.index(self.shape), list(COLOURS).index(self.colour), list(BACKGROUNDS).index(self.background),
                STYLES.index(self.style))


def _mask(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        side = r * 0.88
        return (np.abs(dx) <= side) & (np.abs(dy) <= side)
    if shape == "triangle":  # pointing up: inside three half-planes
        top, bottom = cy - r, cy + r * 0.8
        half_width = (y - top) / (bottom - top) * r * 1.05
        return (y >= top) & (y <= bottom) & (np.abs(dx) <= half_width)
    if shape == "cross":
        arm = r * 0.36
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    raise ValueError(shape)


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        inner = out.copy()
        inner[1:, :] &= out[:-1, :]
        inner[:-1, :] &= out[1:, :]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


def render(scene: Scene) -> np.ndarray:
    """The picture, uint8 HxWx3."""
    rng = random.Random(f"{scene}")
    cx, cy = SIZE / 2 + rng.uniform(-6, 6), SIZE / 2 + rng.uniform(-6, 6)
    r = rng.uniform(15, 21)
    image = np.empty((SIZE, SIZE, 3), np.float32)
    background = np.array(BACKGROUNDS[scene.background], np.float32)
    image[:] = background
    colour = np.array(COLOURS[scene.colour], np.float32)
    mask = _mask(scene.shape, cx, cy, r)
    if scene.style == "flat":
        image[mask] = colour
    elif scene.style == "striped":
        y, x = np.mgrid[0:SIZE, 0:SIZE]
        light = ((x + y) // 6) % 2 == 0
        image[mask & light] = colour
        image[mask & ~light] = colour * 0.45 + 255 * 0.55 * (background.mean() < 128)
    elif scene.style == "shadow":
        shadow = np.roll(np.roll(mask, 5, axis=0), 5, axis=1)
        image[shadow] = background * 0.35 if background.mean() > 60 else np.array((95, 95, 95), np.float32)
        image[mask] = colour
    elif scene.style == "outline":
        image[mask & ~_erode(mask, 6)] = colour
    else:
        raise ValueError(scene.style)
    noise = np.random.default_rng(zlib.crc32(str(scene).encode())).normal(0, 3, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def all_subjects() -> list[tuple[str, str, str]]:
    return list(itertools.product(SHAPES, COLOURS, BACKGROUNDS))


def scenes(styles: tuple[str, ...], per_subject: int, seed: int) -> list[Scene]:
    """Every (shape, colour, background) in each style, `per_subject` placements each."""
    return [Scene(shape, colour, background, style, seed * 1000 + k)
            for style in styles for shape, colour, background in all_subjects() for k in range(per_subject)]


def lora_scenes(count: int, seed: int) -> list[Scene]:
    """The LoRA's training pictures: `count` held-out-style scenes covering the subjects evenly."""
    subjects = all_subjects()
    random.Random(seed).shuffle(subjects)
    return [Scene(*subjects[k % len(subjects)], HELD_OUT_STYLE, 5000 + k) for k in range(count)]

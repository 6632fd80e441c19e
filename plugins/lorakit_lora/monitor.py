"""The loss monitor: loss.csv, loss.png (drawn with Pillow: no plotting library needed) and the
label-noise warning: a loss that reached its low and then rose for two epochs or more.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lora_core.atomic import atomic_write_bytes

COLUMNS = ["epoch", "step", "train_loss", "validation_loss", "learning_rate"]


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
    return path


def rise_after_plateau(values: list[float], rise: float = 0.02, patience: int = 2) -> tuple[int, int] | None:
    """(epoch of the low, last epoch), 1-based, when the last `patience` or more values all sit more
    than `rise` (relative) above the lowest value before them, and that low is not the first value.
    That is the shape label noise gives: the model fits the right captions first, then memorises
    the wrong ones."""
    if len(values) < patience + 2:
        return None
    low_index = min(range(len(values)), key=values.__getitem__)
    after = values[low_index + 1:]
    if low_index == 0 or len(after) < patience:
        return None
    if all(v > values[low_index] * (1 + rise) for v in after[-patience:]) and after[-1] >= after[0]:
        return low_index + 1, len(values)
    return None


def noise_warning(rows: list[dict[str, Any]]) -> str | None:
    for column, label in (("validation_loss", "validation loss"), ("train_loss", "training loss")):
        values = [float(r[column]) for r in rows if r.get(column) not in ("", None)]
        if len(values) != len(rows):
            continue
        found = rise_after_plateau(values)
        if found:
            low, last = found
            return (f"{label} bottomed out at epoch {low} ({values[low - 1]:.4f}) and rose to {values[-1]:.4f} by "
                    f"epoch {last}: the usual sign the LoRA is memorising wrong or inconsistent captions. Run "
                    "`lorakit lint` on the dataset, and consider fewer epochs or a lower learning rate")
        return None
    return None


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (a readable axis end)."""
    import math

    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * (1 - 1e-9))


def draw(rows: list[dict[str, Any]], path: Path, size: tuple[int, int] = (720, 400),
         steps: list[tuple[float, float]] | None = None) -> Path:
    """The loss per epoch, each step's loss behind it (faint), and the learning rate (grey, its own
    scale on the right). `steps`: (training loss, learning rate) per optimizer step. The y axis
    starts at 0 and has labelled ticks, so epoch-to-epoch noise looks as small as it is (an axis
    fitted to the values' range makes noise fill the height); the legend names only the series
    the run has (no "validation" without a validation split)."""
    from PIL import Image, ImageDraw

    width, height = size
    left, right, top, bottom = 64, 64, 28, 44
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    series = {"train_loss": ("train", (31, 119, 180)), "validation_loss": ("validation", (214, 39, 40))}
    points = {k: [(float(r["epoch"]), float(r[k])) for r in rows if r.get(k) not in ("", None)] for k in series}
    steps = steps or []
    per_epoch = int(rows[0]["step"]) if rows and int(rows[0].get("step") or 0) > 0 else 0
    step_points = [((i + 1) / per_epoch, loss) for i, (loss, _) in enumerate(steps)] if per_epoch else []
    rates = [(x, rate) for (x, _), (_, rate) in zip(step_points, steps)]
    if not rates:
        rates = [(float(r["epoch"]), float(r["learning_rate"])) for r in rows
                 if r.get("learning_rate") not in ("", None)]
    values = [v for pts in points.values() for _, v in pts] + [v for _, v in step_points]
    inner_w, inner_h = width - left - right, height - top - bottom
    pen.rectangle([left, top, width - right, height - bottom], outline=(120, 120, 120))
    if values:
        y_top = nice_top(max(values))
        epochs = max([x for pts in points.values() for x, _ in pts] + [x for x, _ in step_points]) or 1.0
        rate_top = nice_top(1.25 * max((r for _, r in rates), default=0.0))  # below the frame

        def place(x: float, y: float, scale: float = y_top) -> tuple[float, float]:
            return left + inner_w * x / max(1.0, epochs), height - bottom - inner_h * y / scale

        for tick in range(5):  # y: 0 .. y_top in quarters, with grid lines; the rate's scale on the right
            value = y_top * tick / 4
            _, y = place(0, value)
            pen.line([(left, y), (width - right, y)], fill=(230, 230, 230))
            pen.line([(left - 4, y), (left, y)], fill=(120, 120, 120))
            pen.text((4, y - 6), f"{value:.4g}", fill=(0, 0, 0))
            if rates:
                pen.text((width - right + 4, y - 6), f"{rate_top * tick / 4:.2g}", fill=(110, 110, 110))
        step = max(1, round(epochs / 10))
        for epoch in range(1, int(epochs) + 1, step):  # x: at most about ten epoch labels
            x, _ = place(epoch, 0)
            pen.line([(x, height - bottom), (x, height - bottom + 4)], fill=(120, 120, 120))
            pen.text((x - 3, height - bottom + 6), str(epoch), fill=(0, 0, 0))
        pen.text((left, height - 16), "epoch", fill=(0, 0, 0))
        pen.text((4, 8), "loss", fill=(0, 0, 0))
        if len(step_points) > 1:
            pen.line([place(x, y) for x, y in step_points], fill=(190, 215, 235), width=1)
        if rates and rate_top > 0:
            pen.line([place(x, r, rate_top) for x, r in rates] if len(rates) > 1 else
                     [place(0, rates[0][1], rate_top), place(epochs, rates[0][1], rate_top)], fill=(150, 150, 150))
        for key, (_, colour) in series.items():
            placed = [place(x, y) for x, y in points[key]]
            if len(placed) > 1:
                pen.line(placed, fill=colour, width=2)
            for px, py in placed:
                pen.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
    legend_x = width - right - 8
    legend = [(label, colour) for key, (label, colour) in series.items() if points[key]]
    if step_points:
        legend.insert(1, ("each step", (150, 190, 220)))
    if rates:
        legend.append(("learning rate", (150, 150, 150)))
    for label, colour in reversed(legend):
        legend_x -= 8 * len(label) + 24
        pen.rectangle([legend_x, 10, legend_x + 10, 20], fill=colour)
        pen.text((legend_x + 14, 8), label, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path

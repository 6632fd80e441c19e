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


def draw(rows: list[dict[str, Any]], path: Path, size: tuple[int, int] = (720, 400)) -> Path:
    from PIL import Image, ImageDraw

    width, height = size
    margin = 48
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    series = {"train_loss": (31, 119, 180), "validation_loss": (214, 39, 40)}
    points = {k: [(float(r["epoch"]), float(r[k])) for r in rows if r.get(k) not in ("", None)] for k in series}
    values = [v for pts in points.values() for _, v in pts]
    pen.rectangle([margin, margin // 2, width - margin // 2, height - margin], outline=(120, 120, 120))
    if values:
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        epochs = max(x for pts in points.values() for x, _ in pts) or 1.0

        def place(x: float, y: float) -> tuple[float, float]:
            inner_w, inner_h = width - margin * 1.5, height - margin * 1.5
            return margin + inner_w * (x - 1) / max(1.0, epochs - 1), height - margin - inner_h * (y - low) / span

        for key, colour in series.items():
            placed = [place(x, y) for x, y in points[key]]
            if len(placed) > 1:
                pen.line(placed, fill=colour, width=2)
            for px, py in placed:
                pen.ellipse([px - 3, py - 3, px + 3, py + 3], fill=colour)
        pen.text((margin, height - margin + 8), f"epochs 1-{int(epochs)}   loss {low:.4f}-{high:.4f}", fill=(0, 0, 0))
    pen.text((width - 230, 4), "train", fill=series["train_loss"])
    pen.text((width - 170, 4), "validation", fill=series["validation_loss"])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path

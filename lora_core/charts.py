"""Small PNG charts drawn with Pillow (no plotting library): `lorakit stats --plot`."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from lora_core.atomic import atomic_write_bytes

BAR = (31, 119, 180)
INK = (30, 30, 30)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, path: Path, horizontal: bool = False,
              size: tuple[int, int] = (800, 480)) -> Path:
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    pen = ImageDraw.Draw(image)
    pen.text((16, 10), title, fill=INK)
    top = max(values, default=0) or 1
    if horizontal:
        left, row = 220, (height - 50) / max(1, len(values))
        for i, (label, value) in enumerate(zip(labels, values)):
            y = 40 + i * row
            pen.text((16, y + row / 4), str(label)[:32], fill=INK)
            pen.rectangle([left, y + 2, left + (width - left - 80) * value / top, y + row - 2], fill=BAR)
            pen.text((left + (width - left - 80) * value / top + 6, y + row / 4), f"{value:g}", fill=INK)
    else:
        bottom, column = height - 60, (width - 40) / max(1, len(values))
        for i, (label, value) in enumerate(zip(labels, values)):
            x = 20 + i * column
            bar_top = bottom - (bottom - 50) * value / top
            pen.rectangle([x + 3, bar_top, x + column - 3, bottom], fill=BAR)
            pen.text((x + 4, bottom + 6), str(label)[:10], fill=INK)
            pen.text((x + 4, bar_top - 14), f"{value:g}", fill=INK)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path

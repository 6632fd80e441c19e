"""The edits `lorakit lint --fix --unsafe-fixes` cannot make on the example dataset: a person
does these (the demo runs this script to show the dataset then passes).

    python examples/finish_by_hand.py build/demo

- the three images captioned "city at night with lights" get captions that describe them;
- the two portraits get their identity tokens (person_A, person_B);
- the row of the lost image `missing.png` is removed, and `drone.png` gets a caption.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from lora_core.atomic import atomic_write_text

REWRITE = {
    "market.png": "[style: cyberpunk] cybrpnk, street market, glowing neon stalls, steam, crowd, night",
    "rooftop.png": "[style: cyberpunk] cybrpnk, rooftop bar, holographic billboards, magenta rim light, rain",
    "subway.png": "[style: cyberpunk] cybrpnk, subway platform, flickering led strips, cyan backlight, fog",
}
ADD = ("drone.png", "[style: cyberpunk] cybrpnk, surveillance drone, red sensor light, smog, night sky")


def finish(folder: Path) -> None:
    path = folder / "metadata.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    out = [header]
    for name, caption in body:
        if name == "missing.png":
            continue
        caption = REWRITE.get(name, caption)
        if name == "portrait_a.png":
            caption = caption.replace("portrait, woman", "portrait of person_A, woman")
        if name == "portrait_b.png":
            caption = caption.replace("portrait, man", "portrait of person_B, man")
        out.append([name, caption])
    out.append(list(ADD))
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(out)
    atomic_write_text(path, buffer.getvalue())


if __name__ == "__main__":
    finish(Path(sys.argv[1]))
    print(f"edited {sys.argv[1]}/metadata.csv by hand (see the script's docstring)")

"""Generate the example dataset: 12 small "cyberpunk" images and a metadata.csv with the
mistakes the lorakit brief describes (run it again to regenerate examples/cyberpunk/).

    python examples/make_example_dataset.py [OUTPUT_DIR]

The images are flat colour blocks made with the standard library: enough for every rule that
looks at files, names and captions. The captions carry, on purpose:
  - the auto-captioner failure: several images captioned "city at night with lights" (LK107)
  - a zero-width space inside the trigger `cybrpnk` (LK105), smart quotes (LK106)
  - stray and double spaces (LK101), a repeated tag (LK103), a trailing comma (LK104)
  - a caption using `;` where the dataset uses `,` (LK102)
  - a row whose image is missing (LK001) and an image with no row (LK002)
  - with its lorakit.toml: captions without the style word `cyberpunk` or its prefix (LK201,
    LK202, LK204), a missing trigger (LK305), two people both captioned "portrait" with no
    identity token (LK301), and "machine" for a steampunk gear device (LK203)
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lora_core.testing import csv_field, write_photo

HERE = Path(__file__).resolve().parent

CAPTIONS = [
    ("neon_alley.png", "[style: cyberpunk] cybrpnk, rain-soaked alley, glowing neon signs, wet asphalt, night"),
    ("market.png", "city at night with lights"),
    ("rooftop.png", "city at night with lights"),
    ("android.png", "[style: cyberpunk] cybrpnk, android bartender, chrome implants, cyan backlight"),
    ("subway.png", "city at night with lights"),
    ("portrait_a.png", "cybr\u200bpnk, portrait, woman, cybernetic arm,  magenta rim light"),
    ("portrait_b.png", "cybrpnk, portrait, man, visor, neon city, neon city"),
    ("billboard.png", "cybrpnk; holographic billboard; smog; kanji signs"),
    ("hovercar.png", " cybrpnk, hover car, \u201cflying\u201d traffic, neon glow,"),
    ("machine.png", "cybrpnk, machine, steam, gears"),
    ("harbour.png", "[style: cyberpunk] cybrpnk, harbour, container cranes, fog, sodium lights"),
    ("missing.png", "cybrpnk, server room, cables, led strips"),  # the image is not there: LK001
]
UNCAPTIONED = "drone.png"  # an image with no row: LK002

CONFIG = """\
# lorakit configuration for the example dataset (see docs/configuration.md).
[lint]
select = ["ALL"]
# This team treats captions copied across images as an error, not a warning.
severity = { LK107 = "error" }

[dataset]
caption-column = "text"

[style]
# The LoRA learns cyberpunk: every caption must say so (LK201, LK204).
required = ["cyberpunk"]
# ... with this exact prefix (LK202); --fix adds it where the style is missing.
prefix = "[style: cyberpunk]"
vague = { "machine" = "steampunk gear device" }
conflicting = ["photorealistic", "photo"]

[entities]
trigger = "cybrpnk"
# The prefix and the trigger form the first tag, which shuffling keeps in place.
keep-tokens = 1
# Two different people appear: each needs their own token (LK301).
identities = ["person_A", "person_B"]

[train]
epochs = 12
learning-rate = 1e-4
rank = 16
alpha = 16
validation-split = 0.1
early-stopping-patience = 2
"""


def generate(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lines = ["file_name,text"]
    for name, caption in CAPTIONS:
        lines.append(f"{name},{csv_field(caption)}")
        if name != "missing.png":
            write_photo(out / name)
    write_photo(out / UNCAPTIONED)
    (out / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "cyberpunk"
    print(f"wrote {generate(target)}")

"""Write a small dataset for the offline training walk-through (docs/offline-training.md): eight
64 px pictures with captions in `metadata.csv`, and a lorakit.toml whose `[train]` section points
at a tiny model built with `python -m lora_core.testing.tiny_models sd FOLDER`.

    python examples/make_offline_dataset.py build/offline-ds build/tiny-sd
"""

from __future__ import annotations

import sys
from pathlib import Path

from lora_core.testing import make_csv_dataset, write_photo

CAPTIONS = ["cybrpnk, neon city street, rain", "cybrpnk, neon alley, night", "cybrpnk, rooftop, neon signs",
            "cybrpnk, market street, rain", "cybrpnk, harbour, neon lights", "cybrpnk, billboard, night",
            "cybrpnk, subway entrance, neon", "cybrpnk, street food stall, rain"]

CONFIG = """\
[entities]
trigger = "cybrpnk"

[train]
base-model = "{base}"
resolution = 64     # the tiny model's size: a real SD 1.5 trains at 512
epochs = 2
rank = 8
alpha = 8
batch-size = 2
seed = 0
"""


def main(folder: Path, base: Path) -> Path:
    rows = [(f"img_{i}.png", caption) for i, caption in enumerate(CAPTIONS)]
    make_csv_dataset(folder, rows, images=False)
    for name, _ in rows:
        write_photo(folder / name, seed=name, size=64)
    (folder / "lorakit.toml").write_text(CONFIG.format(base=base.resolve().as_posix()), encoding="utf-8")
    return folder


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(main(Path(sys.argv[1]), Path(sys.argv[2])))

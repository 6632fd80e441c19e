"""Generate examples/kohya-set/: a kohya multi-concept dataset with no lorakit.toml, carrying the
brief's failures that only the dataset's own conventions reveal (run it again to regenerate).

    python examples/make_kohya_example.py [OUTPUT_DIR]

Three kohya concept folders, sidecar captions, distinct 512 px pictures (lora_core.testing):
  - `10_person_A/` (6 images) and `3_person_B/` (3): identity folders. One person_A caption is a
    bare "portrait, front view" (LK301), one person_B image is captioned person_A (LK308), and
    person_A has 60 samples an epoch against person_B's 9 (LK304);
  - `8_wtrclr_fox/` (10 images): the trigger `wtrclr` and the style "watercolor" in most captions;
    one caption misspells the trigger (`wtrclor`, LK307), one lacks it (LK305), one says
    "photorealistic" (LK205), one says "landscape painting" where the folder says
    "ink-wash landscape" (LK203).
With no config, `lorakit lint examples/kohya-set` reports each of them, saying what it inferred.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lora_core.testing import write_photo

HERE = Path(__file__).resolve().parent

CAPTIONS = {
    "10_person_A/a01.png": "person_A, portrait, short black hair, round glasses, front view, smiling, studio light",
    "10_person_A/a02.png": "person_A, portrait, short black hair, navy sweater, side profile, window light",
    "10_person_A/a03.png": "portrait, front view, smiling, grey background",
    "10_person_A/a04.png": "person_A, upper body, short black hair, round glasses, laughing, outdoor shade",
    "10_person_A/a05.png": "person_A, portrait, round glasses, looking up, neutral expression, studio light",
    "10_person_A/a06.png": "person_A, full body, navy sweater, walking, city street, overcast",
    "3_person_B/b01.png": "person_B, portrait, long red hair, freckles, front view, smiling, window light",
    "3_person_B/b02.png": "person_A, portrait, long red hair, green scarf, side profile, studio light",
    "3_person_B/b03.png": "person_B, upper body, long red hair, freckles, laughing, park bench",
    "8_wtrclr_fox/f01.png": "wtrclr, watercolor painting, red fox curled up asleep, ink-wash landscape, snow",
    "8_wtrclr_fox/f02.png": "wtrclr, watercolor painting, red fox leaping, ink-wash landscape, tall grass",
    "8_wtrclr_fox/f03.png": "wtrclr, watercolor painting, fox cub in its den, ink-wash landscape, dusk",
    "8_wtrclr_fox/f04.png": "wtrclor, watercolor painting, red fox by a river, ink-wash landscape, autumn leaves",
    "8_wtrclr_fox/f05.png": "wtrclr, photorealistic, red fox in fresh snow, sharp focus, ink-wash landscape",
    "8_wtrclr_fox/f06.png": "watercolor painting, two red foxes playing, ink-wash landscape, winter sky",
    "8_wtrclr_fox/f07.png": "wtrclr, watercolor painting, red fox looking back, landscape painting, birch trees",
    "8_wtrclr_fox/f08.png": "wtrclr, watercolor painting, red fox on a fallen log, ink-wash landscape, moss",
    "8_wtrclr_fox/f09.png": "wtrclr, watercolor painting, red fox drinking from a stream, ink-wash landscape",
    "8_wtrclr_fox/f10.png": "wtrclr, watercolor painting, sleeping fox under a pine, ink-wash landscape, moonlight",
}


def generate(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for image, caption in CAPTIONS.items():
        path = write_photo(target / image)
        path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    print(f"wrote {len(CAPTIONS)} images with captions to {target}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "kohya-set")

"""Realistic caption datasets for the dataset-aware rules, clean and with planted failures.

Each dataset reads like one a user would bring: BLIP-style sentences, WD-tagger booru tags,
kohya `N_name` identity and multi-concept folders, a DreamBooth `sks dog` set, watercolor,
ink-wash, low-poly, steampunk and cyberpunk style sets. Captions are composed from phrase pools
with a fixed seed (so every caption is distinct, as in a real set) and written in the format such
a set comes in (metadata.csv, metadata.jsonl or sidecars).

`build(name, folder, planted=...)` writes one and returns the path to lint and, for the planted
version, which images carry which failure (the brief's failure classes). The images are tiny
PNGs: the image rules (LK6xx) are judged on real photographs elsewhere, so the tests here
ignore them.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lora_core.testing import png_bytes


@dataclass
class Built:
    path: Path  # what to lint
    planted: dict[str, str] = field(default_factory=dict)  # image (dataset-relative) -> failure class
    dataset_level: list[str] = field(default_factory=list)  # failures with no row (identity balance)


def _combos(seed: int, *pools: list[str]) -> Iterator[tuple[str, ...]]:
    """Distinct combinations of one item per pool, in a shuffled but fixed order."""
    combos = list(itertools.product(*pools))
    random.Random(seed).shuffle(combos)
    return iter(combos)


def _write_csv(folder: Path, rows: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file_name,text"]
    for image, caption in rows:
        (folder / image).write_bytes(png_bytes(8, 8))
        lines.append(f'{image},"{caption}"' if ("," in caption or '"' in caption) else f"{image},{caption}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "metadata.csv"


def _write_jsonl(folder: Path, rows: list[tuple[str, str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metadata.jsonl").open("w", encoding="utf-8") as fh:
        for image, caption in rows:
            (folder / image).write_bytes(png_bytes(8, 8))
            fh.write(json.dumps({"file_name": image, "text": caption}) + "\n")
    return folder / "metadata.jsonl"


def _write_sidecars(folder: Path, rows: list[tuple[str, str]]) -> Path:
    for image, caption in rows:
        target = folder / image
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png_bytes(8, 8))
        target.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return folder


# ---------------------------------------------------------------------------------------------
# The datasets


def watercolor_foxes(folder: Path, planted: bool) -> Built:
    subjects = ["a red fox curled up asleep", "a red fox leaping through tall grass", "a red fox sitting by a birch",
                "a fox cub peeking out of its den", "a red fox trotting along a riverbank",
                "two red foxes playing in the snow", "a red fox looking over its shoulder"]
    places = ["in a snowy forest", "at dusk", "among autumn leaves", "under a pale winter sky",
              "in a meadow of wildflowers", "beside a frozen pond"]
    finish = ["soft wet-on-wet washes", "loose brushstrokes and granulating pigment", "visible paper texture",
              "muted earthy palette", "bleeding edges and soft blooms"]
    openers = ["watercolor painting of", "a watercolor of", "loose watercolor illustration of"]
    rows = []
    for i, (opener, subject, place, look) in enumerate(itertools.islice(_combos(1, openers, subjects, places, finish),
                                                                        40)):
        rows.append((f"fox_{i:03d}.png", f"{opener} {subject} {place}, {look}, white paper background"))
    built = Built(folder / "metadata.csv")
    if planted:
        rows[5] = (rows[5][0], "photorealistic photo of a red fox standing in fresh snow, sharp focus, shallow depth "
                               "of field")
        rows[17] = (rows[17][0], "a watercolor of a red fox napping under a pine at dusk, 3d render, soft lighting")
        rows[29] = (rows[29][0], "watercolor painting of a red fox on a fallen log, photorealistic fur detail, white "
                                 "paper background")
        built.planted = {rows[5][0]: "style-drift", rows[17][0]: "style-drift", rows[29][0]: "style-drift"}
    _write_csv(folder, rows)
    return built


def inkwash_mountains(folder: Path, planted: bool) -> Built:
    views = ["an ink-wash landscape of misty mountains", "an ink-wash landscape of a lone pavilion on a cliff",
             "an ink-wash landscape of a fisherman's boat on a still lake", "an ink-wash landscape of bamboo groves",
             "an ink-wash landscape of a waterfall between peaks"]
    details = ["above a winding river", "with pine trees clinging to rocks", "under drifting clouds",
               "beside a stone bridge", "with distant geese in flight", "at first light"]
    ink = ["sumi-e brushwork", "graded ink tones on rice paper", "sparse composition with empty space"]
    rows = [(f"ink_{i:02d}.png", f"{v} {d}, {k}") for i, (v, d, k) in
            enumerate(itertools.islice(_combos(2, views, details, ink), 30))]
    built = Built(folder / "metadata.jsonl")
    if planted:
        rows[4] = (rows[4][0], "a landscape painting of mountains and pine trees above a river, graded ink tones on "
                               "rice paper")
        rows[21] = (rows[21][0], "a landscape painting with a small hut under drifting clouds, sumi-e brushwork")
        built.planted = {rows[4][0]: "vague", rows[21][0]: "vague"}
    _write_jsonl(folder, rows)
    return built


def lowpoly_islands(folder: Path, planted: bool) -> Built:
    subjects = ["floating island", "lighthouse on a cliff", "windmill on a hill", "mountain village", "desert oasis",
                "snowy cabin"]
    features = ["pine trees", "waterfall", "winding path", "small pond", "wooden bridge"]
    palette = ["pastel colors", "warm sunset palette", "cool blue palette"]
    rows = []
    for i, (s, f, p) in enumerate(itertools.islice(_combos(3, subjects, features, palette), 30)):
        rows.append((f"island_{i:02d}.png", f"low poly, {s}, {f}, {p}, isometric view, soft shadows"))
    built = Built(folder)
    if planted:
        rows[3] = (rows[3][0], rows[3][1].replace("low poly", "low poly, cartoon style"))
        rows[19] = (rows[19][0], rows[19][1].replace("isometric view", "cartoon style"))
        built.planted = {rows[3][0]: "style-drift", rows[19][0]: "style-drift"}
    _write_sidecars(folder, rows)
    return built


def cyberpunk_booru(folder: Path, planted: bool) -> Built:
    people = ["1girl, solo", "1girl, solo, smile", "1boy, solo", "1girl, solo, upper_body"]
    hair = ["short_hair, black_hair", "long_hair, pink_hair", "long_hair, white_hair", "short_hair, blue_hair"]
    wear = ["techwear, hooded_jacket", "leather_jacket, choker", "bodysuit, glowing_tattoo", "trench_coat, visor"]
    scene = ["neon_lights, city, night, rain", "holographic_display, alley, night", "rooftop, skyline, neon_sign",
             "street_market, crowd, night"]
    rows = []
    for i, combo in enumerate(itertools.islice(_combos(4, people, hair, wear, scene), 40)):
        rows.append((f"cp_{i:02d}.png", "cybrpnk_style, " + ", ".join(combo) + ", looking_at_viewer"))
    built = Built(folder)
    if planted:
        rows[7] = (rows[7][0], rows[7][1].replace("cybrpnk_style", "cybrpnk_styel"))
        rows[12] = (rows[12][0], rows[12][1].replace("cybrpnk_style", "cybrpnk style"))
        for n in (20, 26, 33):
            rows[n] = (rows[n][0], rows[n][1].replace("cybrpnk_style, ", ""))
        long_hair = [n for n, (_, c) in enumerate(rows) if "long_hair" in c][-2:]
        for n in long_hair:
            rows[n] = (rows[n][0], rows[n][1].replace("long_hair", "long hair"))
        built.planted = {rows[7][0]: "trigger-typo", rows[12][0]: "trigger-form",
                         **{rows[n][0]: "trigger-missing" for n in (20, 26, 33)},
                         **{rows[n][0]: "tag-spelling" for n in long_hair}}
    _write_sidecars(folder, rows)
    return built


def steampunk_workshop(folder: Path, planted: bool) -> Built:
    things = ["steampunk gear device", "steampunk gear device on a workbench", "brass automaton",
              "steampunk gear device, glowing core"]
    parts = ["brass, copper pipes", "pressure gauges, rivets", "exposed cogs, valves", "leather straps, brass"]
    places = ["cluttered workshop", "airship deck", "victorian laboratory", "clock tower interior"]
    light = ["warm lamplight", "steam haze", "golden hour light"]
    rows = []
    for i, combo in enumerate(itertools.islice(_combos(5, things, parts, places, light), 30)):
        rows.append((f"gear_{i:02d}.png", "stmpnk, " + ", ".join(combo)))
    built = Built(folder / "metadata.csv")
    if planted:
        device = [n for n, (_, c) in enumerate(rows) if "gear device" in c]
        for n in device[3:5]:
            rows[n] = (rows[n][0], rows[n][1].replace("steampunk gear device", "machine"))
        built.planted = {rows[n][0]: "vague" for n in device[3:5]}
    _write_csv(folder, rows)
    return built


def kohya_identities(folder: Path, planted: bool) -> Built:
    looks = {"person_A": ["short black hair", "round glasses", "navy sweater"],
             "person_B": ["long red hair", "freckles", "green scarf"]}
    views = ["front view", "three-quarter view", "side profile", "looking up", "looking away"]
    moods = ["smiling", "neutral expression", "laughing"]
    light = ["studio lighting, grey background", "window light, white wall", "outdoor shade, blurred park"]
    rows = []
    counts = {"person_A": 14, "person_B": 4 if planted else 14}
    repeats = {"person_A": 10, "person_B": 3 if planted else 10}
    for person, count in counts.items():
        for i, (v, m, lt) in enumerate(itertools.islice(_combos(6 + len(person), views, moods, light), count)):
            look = ", ".join(looks[person])
            image = f"{repeats[person]}_{person}/{person}_{i:02d}.png"
            rows.append((image, f"{person}, portrait, {look}, {v}, {m}, {lt}"))
    built = Built(folder)
    if planted:
        a = [n for n, (img, _) in enumerate(rows) if img.startswith("10_person_A")]
        b = [n for n, (img, _) in enumerate(rows) if "person_B" in img]
        rows[a[2]] = (rows[a[2]][0], "portrait, front view, smiling, studio lighting, grey background")
        rows[a[9]] = (rows[a[9]][0], "portrait, woman, side profile, window light, white wall")
        rows[b[1]] = (rows[b[1]][0], rows[b[1]][1].replace("person_B", "person_A"))
        built.planted = {rows[a[2]][0]: "identity-unbound", rows[a[9]][0]: "identity-unbound",
                         rows[b[1]][0]: "identity-swap"}
        built.dataset_level = ["identity-balance"]
    _write_sidecars(folder, rows)
    return built


def multi_concept(folder: Path, planted: bool) -> Built:
    city = ["neon city street", "rainy alley", "elevated train", "night market", "rooftop bar"]
    city_more = ["holographic billboards", "wet asphalt reflections", "crowds with umbrellas", "steam from vents"]
    fox = ["red fox in the snow", "fox cub in ferns", "fox on a mossy log", "sleeping fox", "fox by a stream"]
    fox_more = ["soft washes", "paper texture", "loose brushwork", "muted palette"]
    rows = []
    for i, (a, b) in enumerate(itertools.islice(_combos(8, city, city_more), 18)):
        rows.append((f"10_cybrpnk_city/city_{i:02d}.png", f"cybrpnk, {a}, {b}, night"))
    for i, (a, b) in enumerate(itertools.islice(_combos(9, fox, fox_more), 18)):
        rows.append((f"10_wtrclr_fox/fox_{i:02d}.png", f"wtrclr, {a}, {b}, white background"))
    built = Built(folder)
    if planted:
        for n in (4, 11, 22, 30):
            rows[n] = (rows[n][0], rows[n][1].split(", ", 1)[1])
        built.planted = {rows[n][0]: "trigger-missing" for n in (4, 11, 22, 30)}
    _write_sidecars(folder, rows)
    return built


def sks_dog(folder: Path, planted: bool) -> Built:
    poses = ["lying on a wooden floor", "sitting on green grass", "running on a sandy beach", "sleeping on a sofa",
             "standing in the snow", "looking out of a car window", "chewing a red ball"]
    extra = ["", " with a blue collar", " in the afternoon sun", " next to a potted plant"]
    rows = [(f"dog{i:02d}.jpg", f"a photo of sks dog {p}{e}") for i, (p, e) in
            enumerate(itertools.islice(_combos(10, poses, extra), 25))]
    built = Built(folder / "metadata.csv")
    if planted:
        rows[6] = (rows[6][0], rows[6][1].replace("sks dog", "a dog"))
        rows[18] = (rows[18][0], rows[18][1].replace("sks dog", "dog"))
        built.planted = {rows[6][0]: "trigger-missing", rows[18][0]: "trigger-missing"}
    _write_csv(folder, rows)
    return built


def anime_tags(folder: Path, planted: bool) -> Built:
    """WD-tagger output with no trigger: 1girl/solo in every caption must not become one."""
    hair = ["long_hair, blue_eyes", "short_hair, brown_eyes", "twintails, red_eyes", "ponytail, green_eyes"]
    clothes = ["school_uniform, pleated_skirt", "hoodie, shorts", "kimono, obi", "sailor_collar, neckerchief"]
    scene = ["cherry_blossoms, outdoors", "classroom, indoors", "beach, ocean, sky", "night, city_lights"]
    rows = [(f"{i:03d}.png", "1girl, solo, " + ", ".join(c) + ", smile") for i, c in
            enumerate(itertools.islice(_combos(11, hair, clothes, scene), 40))]
    built = Built(folder)
    if planted:  # an auto-captioner's sentences mixed into the tagged set
        rows[8] = (rows[8][0], "a girl with long blue hair in a school uniform smiling under cherry blossoms")
        rows[27] = (rows[27][0], "a young woman in a kimono standing on a beach at sunset")
        built.planted = {rows[8][0]: "caption-form", rows[27][0]: "caption-form"}
    _write_sidecars(folder, rows)
    return built


def blip_sentences(folder: Path, planted: bool) -> Built:
    """Auto-captioner sentences: people, streets, food; no trigger, no style."""
    who = ["a woman", "a man", "a young woman", "an old man", "two people", "a little girl"]
    doing = ["sitting on a bench", "riding a bicycle", "walking a dog", "reading a book", "eating a sandwich"]
    where = ["in a park", "down a busy street", "next to a fountain", "on a sunny day"]
    rows = [(f"img_{i:03d}.jpg", f"{w} {d} {p}") for i, (w, d, p) in
            enumerate(itertools.islice(_combos(12, who, doing, where), 36))]
    _write_csv(folder, rows)
    return Built(folder / "metadata.csv")


def cyberpunk_folder(folder: Path, planted: bool) -> Built:
    """The brief's canonical failure: `10_cyberpunk_style/` captioned "city at night with lights"."""
    scenes = ["cyberpunk city street at night", "cyberpunk alley with neon signs", "cyberpunk skyline in the rain",
              "cyberpunk market under holograms", "cyberpunk rooftop with antennas"]
    extra = ["glowing kanji billboards", "flying cars overhead", "pink and teal neon", "puddles reflecting lights"]
    rows = [(f"10_cyberpunk_style/{i:02d}.png", f"{s}, {e}") for i, (s, e) in
            enumerate(itertools.islice(_combos(13, scenes, extra), 20))]
    built = Built(folder)
    if planted:
        plain = ["city at night with lights", "street at night with lights, cars",
                 "buildings at night with lights, rain", "a street with lights at night, people",
                 "tall buildings with lights at night"]
        for n, caption in zip((2, 7, 11, 14, 18), plain):
            rows[n] = (rows[n][0], caption)
        built.planted = {rows[n][0]: "style-missing" for n in (2, 7, 11, 14, 18)}
    _write_sidecars(folder, rows)
    return built


DATASETS: dict[str, Callable[[Path, bool], Built]] = {
    "watercolor_foxes": watercolor_foxes,
    "inkwash_mountains": inkwash_mountains,
    "lowpoly_islands": lowpoly_islands,
    "cyberpunk_booru": cyberpunk_booru,
    "steampunk_workshop": steampunk_workshop,
    "kohya_identities": kohya_identities,
    "multi_concept": multi_concept,
    "sks_dog": sks_dog,
    "anime_tags": anime_tags,
    "blip_sentences": blip_sentences,
    "cyberpunk_folder": cyberpunk_folder,
}


def build(name: str, folder: Path, planted: bool = False) -> Built:
    return DATASETS[name](folder / name, planted)


def photo_portraits(folder: Path, planted: bool) -> Built:
    """One person, DreamBooth-style sentences with a rare token and a class word."""
    shots = ["a close-up photograph of ohwx woman", "a photograph of ohwx woman", "a candid photograph of ohwx woman",
             "a full-length photograph of ohwx woman"]
    wearing = ["wearing a denim jacket", "in a black turtleneck", "wearing a yellow raincoat", "in a linen shirt",
               "wearing a wool coat"]
    where = ["in soft window light", "on a city rooftop", "at a cafe table", "in a botanical garden",
             "against a brick wall"]
    rows = [(f"ohwx_{i:02d}.jpg", f"{a} {b}, {c}") for i, (a, b, c) in
            enumerate(itertools.islice(_combos(14, shots, wearing, where), 30))]
    built = Built(folder / "metadata.csv")
    if planted:
        rows[8] = (rows[8][0], rows[8][1].replace("ohwx woman", "a woman"))
        rows[20] = (rows[20][0], rows[20][1].replace("ohwx", "ohxw"))
        built.planted = {rows[8][0]: "trigger-missing", rows[20][0]: "trigger-typo"}
    _write_csv(folder, rows)
    return built


def pixel_sprites(folder: Path, planted: bool) -> Built:
    who = ["knight", "archer", "wizard", "slime monster", "skeleton warrior", "merchant"]
    gear = ["sword and shield", "longbow", "wooden staff", "no weapon", "rusty axe"]
    pose = ["idle pose", "walking animation frame", "attack pose"]
    rows = [(f"sprite_{i:02d}.png", f"pixel art, {a}, {b}, {c}, transparent background") for i, (a, b, c) in
            enumerate(itertools.islice(_combos(15, who, gear, pose), 30))]
    built = Built(folder)
    if planted:
        rows[9] = (rows[9][0], rows[9][1].replace("pixel art", "pixel art, 3d render"))
        drift = rows[22][1].replace("transparent background", "photorealistic, transparent background")
        rows[22] = (rows[22][0], drift)
        built.planted = {rows[9][0]: "style-drift", rows[22][0]: "style-drift"}
    _write_sidecars(folder, rows)
    return built


def two_characters(folder: Path, planted: bool) -> Built:
    """Two characters in one folder (65% / 35%), with `ahoge` tagged in most captions but not first."""
    miku = ["hatsune_miku, 1girl, twintails, aqua_hair, ahoge", "hatsune_miku, 1girl, aqua_hair, ahoge, necktie",
            "hatsune_miku, 1girl, twintails, detached_sleeves"]
    rin = ["kagamine_rin, 1girl, short_hair, blonde_hair, ahoge", "kagamine_rin, 1girl, hair_bow, ahoge"]
    scene = ["stage, spotlight, microphone", "city, night, smile", "classroom, sitting", "sky, clouds, wind",
             "concert, crowd, glowstick", "cherry_blossoms, outdoors"]
    extra = ["looking_at_viewer", "open_mouth", "closed_eyes", "from_side"]
    rows = []
    for i, (who, place, more) in enumerate(itertools.islice(_combos(16, miku, scene, extra), 26)):
        rows.append((f"miku_{i:02d}.png", f"{who}, {place}, {more}"))
    for i, (who, place, more) in enumerate(itertools.islice(_combos(17, rin, scene, extra), 14)):
        rows.append((f"rin_{i:02d}.png", f"{who}, {place}, {more}"))
    _write_sidecars(folder, rows)
    return Built(folder)


def kohya_with_regularisation(folder: Path, planted: bool) -> Built:
    """`10_zwx man/` (kohya's "trigger class" folder name) beside a `1_man/` regularisation folder."""
    shots = ["zwx man, portrait photo", "photo of zwx man, upper body", "zwx man, close-up photo"]
    details = ["short beard, grey hoodie", "glasses, navy blazer", "curly hair, white t-shirt",
               "smiling, leather jacket",
               "serious expression, black coat"]
    light = ["natural light", "studio lighting", "golden hour"]
    rows = [(f"10_zwx man/zwx_{i:02d}.jpg", f"{a}, {b}, {c}") for i, (a, b, c) in
            enumerate(itertools.islice(_combos(18, shots, details, light), 20))]
    reg = ["photo of a man", "a man, portrait photo", "portrait of a man"]
    reg_more = ["city street", "park bench", "office", "beach", "kitchen", "forest trail"]
    combos = itertools.islice(_combos(19, reg, reg_more), 18)
    rows += [(f"1_man/reg_{i:02d}.jpg", f"{a}, {b}") for i, (a, b) in enumerate(combos)]
    built = Built(folder)
    if planted:
        rows[3] = (rows[3][0], rows[3][1].replace("zwx man", "man"))
        rows[11] = (rows[11][0], rows[11][1].replace("zwx man", "Zwx man"))
        built.planted = {rows[3][0]: "trigger-missing", rows[11][0]: "trigger-case"}
    _write_sidecars(folder, rows)
    return built


def oil_portraits(folder: Path, planted: bool) -> Built:
    """Oil portraits with a few pencil studies (a compatible medium, not a conflict)."""
    who = ["an elderly fisherman", "a young violinist", "a woman in a red shawl", "a sleeping child",
           "a sailor with a pipe", "a baker at dawn"]
    how = ["impasto brushwork", "warm chiaroscuro", "visible canvas texture", "loose palette-knife strokes"]
    rows = [(f"oil_{i:02d}.png", f"oil painting of {w}, {h}, dark background") for i, (w, h) in
            enumerate(itertools.islice(_combos(20, who, how), 22))]
    rows[4] = (rows[4][0], "oil painting of a fisherman mending nets, pencil sketch underdrawing visible, "
                           "dark background")
    built = Built(folder / "metadata.jsonl")
    if planted:
        rows[10] = (rows[10][0], "anime style portrait of a young violinist, cel shading, dark background")
        built.planted = {rows[10][0]: "style-drift"}
    _write_jsonl(folder, rows)
    return built


def llava_descriptions(folder: Path, planted: bool) -> Built:
    """Long auto-captioner descriptions: no trigger, no dominant style."""
    opening = ["The image shows", "In this picture we see", "This photo captures", "The scene depicts"]
    subject = ["a golden retriever running across a grassy field", "a steaming cup of coffee on a wooden table",
               "a red vintage car parked on a cobblestone street", "a group of friends laughing around a campfire",
               "a lighthouse standing on a rocky coast", "an old library with tall wooden shelves"]
    detail = ["The lighting is warm and soft.", "The background is slightly blurred.",
              "Bright colors dominate the composition.", "The sky is overcast and grey."]
    rows = [(f"{i:04d}.jpg", f"{a} {b}. {c}") for i, (a, b, c) in
            enumerate(itertools.islice(_combos(21, opening, subject, detail), 40))]
    _write_jsonl(folder, rows)
    return Built(folder / "metadata.jsonl")


DATASETS.update({
    "photo_portraits": photo_portraits,
    "pixel_sprites": pixel_sprites,
    "two_characters": two_characters,
    "kohya_with_regularisation": kohya_with_regularisation,
    "oil_portraits": oil_portraits,
    "llava_descriptions": llava_descriptions,
})


def character_booru(folder: Path, planted: bool) -> Built:
    """A character LoRA in WD-tagger tags: name and series tags lead every caption, with tags
    that wander (`pointy_ears`) and some the tagger only sometimes sees."""
    outfit = ["white_capelet, black_pantyhose", "white_dress, striped", "black_coat, scarf", "robe, hood"]
    pose = ["standing, holding_staff", "sitting, reading_book", "walking, from_side", "looking_back, upper_body"]
    scene = ["forest, outdoors, day", "night, starry_sky", "snow, winter", "indoors, library", "field, flower"]
    rows = [(f"frieren_{i:02d}.png", f"frieren, sousou_no_frieren, 1girl, solo, elf, pointy_ears, long_hair, "
             f"white_hair, twintails, {o}, {p}, {s}") for i, (o, p, s) in
            enumerate(itertools.islice(_combos(22, outfit, pose, scene), 36))]
    built = Built(folder)
    if planted:
        rows[5] = (rows[5][0], rows[5][1].replace("frieren, sousou_no_frieren", "sousou_no_frieren"))
        rows[14] = (rows[14][0], rows[14][1].replace("frieren, sousou", "freiren, sousou"))
        built.planted = {rows[5][0]: "trigger-missing", rows[14][0]: "trigger-typo"}
    _write_sidecars(folder, rows)
    return built


def landscape_photos(folder: Path, planted: bool) -> Built:
    """Landscape photographs, most of mountains: "mountain landscape" is common, not a rule."""
    views = ["a mountain landscape", "a snowy mountain landscape", "an alpine mountain landscape",
             "a landscape with a lake", "a coastal landscape", "a desert landscape"]
    light = ["at sunrise", "under storm clouds", "in golden hour light", "after rain", "in thick fog"]
    extra = ["shot on a wide lens", "with long exposure", "from a high viewpoint"]
    rows = [(f"land_{i:02d}.jpg", f"{v} {lt}, {e}") for i, (v, lt, e) in
            enumerate(itertools.islice(_combos(23, views, light, extra), 40))]
    _write_csv(folder, rows)
    return Built(folder / "metadata.csv")


DATASETS.update({"character_booru": character_booru, "landscape_photos": landscape_photos})

#: Datasets that exist to prove silence (no planted version).
CLEAN_ONLY = {"blip_sentences", "two_characters", "llava_descriptions", "landscape_photos"}

"""Corpora written by us that reproduce, one by one, what published LoRA datasets look like
(bench/bench_realworld.py measures the real ones): each test names the real pattern it stands
for, checks that lorakit is right on it, and that the known failures in it are still found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lora_core
from lora_core.testing import make_csv_dataset, write_photo

PORTRAIT = ("[trigger] stands in a sunlit hotel room wearing a white sundress with thin straps; her short black bob "
            "frames the face — the mouth closed in a calm smile. Behind her, sheer curtains soften the light, and the "
            "warm wooden floor fades into a shallow depth of field.")


def sidecars(folder: Path, captions: dict[str, str], size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, caption in captions.items():
        write_photo(folder / f"{stem}.png", seed=stem, size=size)
        (folder / f"{stem}.txt").write_text(caption, encoding="utf-8")
    return folder


def lint(path: Path, registry, **options) -> list[lora_core.Violation]:
    result = lora_core.lint(path, registry=registry, **options)
    assert not result.crashes, [c.describe() for c in result.crashes]
    return list(result)


def warnings(found: list[lora_core.Violation]) -> list[tuple[str, str | None]]:
    return sorted((v.code, v.image) for v in found if v.severity.value in ("error", "warning"))


def test_ai_toolkit_prose_set_is_clean_zero_config(tmp_path, registry):
    """conanak99/lora-datasets: ai-toolkit sets for a Krea-class model, ~150-word VLM prose with
    `[trigger]` first or mid-sentence, semicolons and em dashes in the prose."""
    rooms = ["sunlit hotel room", "rooftop garden", "train carriage", "tiled kitchen", "library aisle",
             "beach boardwalk"]
    clothes = ["a white sundress with thin straps", "a grey wool coat over a turtleneck",
               "a red kimono with gold cranes", "a denim jacket and a pleated skirt"]
    light = ["sheer curtains soften the light", "neon signs glow magenta and teal", "overcast daylight falls flat",
             "a low sun casts long amber shadows"]
    captions = {}
    for i in range(12):
        head = "[trigger] stands" if i % 2 else "[trigger]. A woman stands"
        poses = ["one hand on the window frame", "arms folded loosely", "leaning on a railing", "holding a paper cup",
                 "turning back over the shoulder", "crouching beside a bag"]
        moods = ["calm", "amused", "tired but warm", "curious", "distant", "playful"]
        palettes = ["teal and cream", "rust and gold", "grey and pink", "olive and white"]
        captions[f"{i:02d}"] = (f"{head} in a {rooms[i % 6]} wearing {clothes[i % 4]}; {poses[(i + 1) % 6]}, her "
                                f"expression {moods[(i + 2) % 6]} — the mouth {'closed' if i % 3 else 'open'}. Behind "
                                f"her, {light[i % 4]}; the {rooms[(i + 3) % 6]} poster on the wall is "
                                f"{['blurred', 'tilted', 'faded'][i % 3]}, and the palette runs to "
                                f"{palettes[(i + 1) % 4]} "
                                f"in a {['medium', 'full-body', 'close-up'][(i + 2) % 3]} shot from "
                                f"{['eye level', 'a low angle', 'slightly above'][i % 3]}. Soft "
                                f"{['window', 'lamp', 'street', 'sky'][i % 4]} light wraps the "
                                f"{['cheek', 'shoulder', 'hair', 'collar'][(i + 1) % 4]}, and "
                                f"{['a plant', 'a bicycle', 'a suitcase', 'a cat'][(i + 2) % 4]} sits at the edge of "
                                "the frame.")
    folder = sidecars(tmp_path / "person_set", captions)
    found = lint(folder, registry, ignore=["LK6"])
    assert warnings(found) == []  # no LK102 for `;`, no LK202 for `[trigger]`, no LK501 error per caption
    (overflow,) = [v for v in found if v.code == "LK501"]
    assert overflow.severity.value == "info" and overflow.image is None


def test_ai_toolkit_placeholder_is_the_trigger_and_init_does_not_pin_it(tmp_path, registry):
    from click.testing import CliRunner

    from lora_core.cli import cli

    captions = {f"{i:02d}": f"[trigger] wearing outfit {i}, standing in a garden at noon" for i in range(8)}
    folder = sidecars(tmp_path / "set", captions)
    result = CliRunner().invoke(cli, ["init", str(folder), "--stdout"])
    assert result.exit_code == 0, result.output
    assert "ai-toolkit's placeholder `[trigger]` in 8 of 8 captions" in result.output
    assert '# trigger = "[trigger]"' in result.output and "\ntrigger =" not in result.output


def test_two_letter_trigger_from_the_kohya_folder_name(tmp_path, registry):
    """shirayu/example_lora_training: `tk` leads 14 of 14 WD14 captions in `5_tk girl`."""
    tags = ["1girl, solo, smile, blue_eyes, maid", "1girl, solo, twintails, blue_hair, apron",
            "1girl, solo, open_mouth, dress, full_body", "1girl, solo, kimono, sandals, happy"]
    folder = tmp_path / "img_train" / "5_tk girl"
    sidecars(folder, {str(i): f"tk, {tags[i % 4]}, pose_{i}" for i in range(12)})
    (folder / "7.txt").write_text(f"{tags[1]}, pose_7", encoding="utf-8")  # the trigger forgotten
    found = lint(tmp_path / "img_train", registry, ignore=["LK6"])
    (missing,) = [v for v in found if v.code == "LK305"]
    assert missing.image == "5_tk girl/7.png" and "trigger `tk` inferred from 11 of 12" in missing.message


def test_dreambooth_instance_prompt_gives_its_trigger(tmp_path, registry):
    """`A xx photo of ...` opening every caption of a DreamBooth folder: `xx` is the trigger."""
    scenes = ["on the grass", "in the snow", "on a sofa", "at the beach", "in a park", "under a table", "by a lake",
              "on a rug", "in the rain", "at night"]
    rows = [(f"{i}.png", f"A xx photo of a dog, {scene}") for i, scene in enumerate(scenes)]
    rows.append(("10.png", "A photo of a dog on a bed"))
    path = make_csv_dataset(tmp_path / "db", rows)
    found = lint(path, registry, select=["LK3"])
    (missing,) = [v for v in found if v.code == "LK305"]
    assert missing.image == "10.png" and "trigger `xx` inferred from 10 of 11 captions" in missing.message


def test_kohya_regularisation_folder_is_one_info_not_44_errors(tmp_path, registry):
    """kohya's img_reg/1_girl beside img_train/: class images without caption files."""
    sidecars(tmp_path / "img_train" / "5_tk girl", {str(i): f"tk, 1girl, smile, pose_{i}" for i in range(6)})
    reg = tmp_path / "img_reg" / "1_girl"
    reg.mkdir(parents=True)
    for i in range(12):
        write_photo(reg / f"{i:05d}.png", seed=f"reg{i}", size=64)
    found = lint(tmp_path, registry, select=["LK002"])
    (notice,) = found
    assert notice.severity.value == "info" and "12 regularisation images in `img_reg/1_girl`" in notice.message
    assert "class `girl`" in notice.message


def test_a_whole_set_at_one_small_size_is_one_finding(tmp_path, registry):
    """andreasjansson/monkey-island-sd: 1,262 frames of 320x144, trained at --resolution=144."""
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    rows = []
    for i in range(12):
        Image.new("RGB", (320, 144), (i * 20, 40, 90)).save(folder / f"{i}.png")
        rows.append({"file_name": f"{i}.png", "text": f"a pixel art room number {i} with a door"})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    found = [v for v in lint(folder, registry, select=["LK602"])]
    (finding,) = found
    assert finding.image is None and finding.message.startswith("12 of 12 images are smaller than 512 px")
    assert finding.severity.value == "info"  # a set made at one size is most likely made for it
    assert "[train] resolution = 144" in finding.message
    (folder / "lorakit.toml").write_text("[images]\nmin-size = 144\n", encoding="utf-8")
    assert lint(folder, registry, select=["LK602"]) == []


def test_caption_augmentation_layout_is_one_info(tmp_path, registry):
    """jcalz23/lora-stable-diffusion-houses: every image listed 4 times, each with its own caption."""
    rows = []
    for image in range(10):
        rows += [(f"imgs/{image}.png", f"a two-story house number {image}, view {k}") for k in range(4)]
    rows.append(("imgs/extra.png", "a house"))
    rows.append(("imgs/extra.png", "a house"))  # a real accident: the same row twice
    path = make_csv_dataset(tmp_path / "houses", rows)
    found = lint(path, registry, select=["LK006"])
    layout = [v for v in found if v.image is None]
    assert len(layout) == 1 and layout[0].severity.value == "info"
    assert "10 of 11 images are listed 4 times, each time with a different caption" in layout[0].message
    assert [(v.image, v.severity.value) for v in found if v.image] == [("imgs/extra.png", "error")]


def test_blip_set_findings(tmp_path, registry):
    """BLIP captions: a repeated phrase, a cut-off caption, a detokeniser's `old - school`."""
    rows = [("a.png", "a living room with a red carpet and a red carpet"),
            ("b.png", "a man and a woman standing in front of a"),
            ("c.png", "an old - school computer game with a gorilla face"),
            ("d.png", "a group of people walking around"),
            ("e.png", "a painting of a castle at night - with a full moon above the towers"),
            ("f.png", "a man in a red coat standing on a pier next to the ocean")]
    path = make_csv_dataset(tmp_path / "blip", rows)
    found = lint(path, registry, select=["LK111", "LK112", "LK113"])
    assert [(v.code, v.image) for v in found] == [("LK111", "a.png"), ("LK112", "b.png"), ("LK113", "c.png")]
    fixed = lora_core.fix(path, registry=registry, select=["LK113"])
    assert not fixed.remaining.crashes
    assert "an old-school computer game" in path.read_text(encoding="utf-8")


def test_contradictions_notes_and_a_boilerplate_block(tmp_path, registry):
    rows = [(f"{i:02d}.png", f"tk, 1girl, solo, long_hair, smile, outfit_{i}") for i in range(10)]
    rows[3] = ("03.png", "tk, 1girl, solo, short_hair, long_hair, smile")
    rows[4] = ("04.png", "tk, 2girls, short_hair, long_hair, smile")  # two people: both can be true
    rows[5] = ("05.png", "tk, 1girl, solo, full_body, upper_body, smile")
    rows[6] = ("06.png", "tk, 1girl, solo, smile, TODO check the hands")
    path = make_csv_dataset(tmp_path / "tags", rows)
    found = lint(path, registry, select=["LK114", "LK115"])
    assert [(v.code, v.image) for v in found] == [("LK114", "03.png"), ("LK114", "05.png"), ("LK115", "06.png")]
    block = ("Her long straight black hair with full bangs frames dark brown eyes and a small beauty mark under "
             "the left eye")
    prose = [(f"{i:02d}.png", f"[trigger] sits by window {i} in the afternoon. {block}, and she smiles at scene {i}.")
             for i in range(12)]
    path = make_csv_dataset(tmp_path / "identity", prose)
    (finding,) = lint(path, registry, select=["LK116"])
    assert finding.image is None and finding.message.startswith("12 of 12 captions repeat the same block of")
    assert "long straight black hair with full bangs" in finding.message


@pytest.mark.parametrize("caption, reported", [
    ("a photo of a woman on a sofa, leaning on a cartoon pillow", False),
    ("a photo of a woman holding a yellow cartoon-egg cushion", False),
    ("a cartoon of a woman on a sofa", True),
    ("a photo of a fox, photorealistic fur detail", False),  # the set is photos: no conflict
])
def test_a_style_word_naming_a_thing_is_not_a_style(tmp_path, registry, caption, reported):
    rows = [(f"{i}.png", f"a photorealistic photo of a woman in room {i}, natural light") for i in range(9)]
    rows.append(("x.png", caption))
    path = make_csv_dataset(tmp_path / "photos", rows)
    found = [v for v in lint(path, registry, select=["LK205"]) if v.image == "x.png"]
    assert bool(found) == reported, [v.message for v in found]


def test_model_from_trainer_configs(tmp_path, registry):
    """The trainer config says which model reads the captions: its budget applies."""
    long = "tk, " + ", ".join(f"tag_{i}" for i in range(40))  # 171 CLIP tokens
    sidecars(tmp_path / "data" / "5_tk girl", {str(i): long for i in range(3)})
    kohya = tmp_path / "kohya.json"
    kohya.write_text(json.dumps({"train_data_dir": str(tmp_path / "data"), "sdxl": True, "caption_extension": ".txt",
                                 "pretrained_model_name_or_path": "/m/ponyDiffusionV6XL.safetensors"}),
                     encoding="utf-8")
    found = [v for v in lint(kohya, registry, select=["LK501"])]
    assert found and all("Pony Diffusion (SDXL): 75 CLIP tokens" in v.message for v in found)
    kohya.write_text(json.dumps({"train_data_dir": str(tmp_path / "data"), "sdxl": True, "max_token_length": 225,
                                 "caption_extension": ".txt"}), encoding="utf-8")
    assert lint(kohya, registry, select=["LK501"]) == []
    job = tmp_path / "job.yaml"
    job.write_text(f"job: extension\nconfig:\n  name: x\n  process:\n    - type: sd_trainer\n      datasets:\n"
                   f"        - folder_path: {tmp_path / 'data' / '5_tk girl'}\n      model:\n"
                   f"        name_or_path: black-forest-labs/FLUX.1-dev\n        arch: flux\n", encoding="utf-8")
    assert lint(job, registry, select=["LK501"]) == []


def test_one_style_called_four_names_is_one_finding(tmp_path, registry):
    names = ["watercolor"] * 8 + ["watercolour painting"] * 4 + ["aquarelle"] * 3 + ["watercolors"] * 2 + ["sketch"]
    rows = [(f"{i:02d}.png", f"a fox in the snow at dusk number {i}, {name}") for i, name in enumerate(names)]
    path = make_csv_dataset(tmp_path / "foxes", rows)
    (finding,) = lint(path, registry, select=["LK207"])
    assert finding.image is None and "the style `watercolor` is named 3 ways" in finding.message
    assert "`watercolor` (10), `watercolour painting` (4), `aquarelle` (3)" in finding.message
    rows = [(f"{i}.png", f"a fox number {i}, watercolor painting") for i in range(9)]
    path = make_csv_dataset(tmp_path / "one", rows)
    assert lint(path, registry, select=["LK207"]) == []


def test_a_placeholder_written_another_way_trains_as_written(tmp_path, registry):
    captions = {f"{i:02d}": f"[trigger] wearing outfit {i}, standing in a garden at noon" for i in range(10)}
    captions["03"] = "[Trigger] wearing outfit 3, standing in a garden at noon"
    captions["04"] = "a portrait of {trigger} in a garden"
    folder = sidecars(tmp_path / "set", captions)
    found = lint(folder, registry, select=["LK307"])
    assert sorted((v.image, v.message.split(" is not")[0]) for v in found) == [
        ("03.png", "`[Trigger]`"), ("04.png", "`{trigger}`")]
    fixed = lora_core.fix(folder, registry=registry, select=["LK307"])
    assert not fixed.remaining.crashes
    assert (folder / "03.txt").read_text(encoding="utf-8").startswith("[trigger] wearing")

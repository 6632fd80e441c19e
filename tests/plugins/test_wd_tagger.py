"""The `wd-tagger` captioner on tiny ONNX taggers exported here with the real I/O signatures (WD v3:
NHWC BGR 0-255 with sigmoid scores and selected_tags.csv; JoyTag: NCHW RGB CLIP-normalised logits
and top_tags.txt), run through onnxruntime as a user's model would be."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from lorakit_wd import WdTagger, mcut_threshold

from lora_core.captioning import CaptionContext
from lora_core.cli import cli
from lora_core.errors import PluginError
from lora_core.protocols import ImageItem
from lora_core.testing.tiny_taggers import tiny_joytag, tiny_wd_tagger

RGB = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


@pytest.fixture(scope="module")
def wd_model(tmp_path_factory):
    return tiny_wd_tagger(tmp_path_factory.mktemp("wd"))


@pytest.fixture(scope="module")
def joytag_model(tmp_path_factory):
    return tiny_joytag(tmp_path_factory.mktemp("joytag"))


def _items(folder, colours, size=(64, 64), mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index, colour in enumerate(colours):
        path = folder / f"{index:02d}_{colour}.png"
        Image.new(mode, size, RGB[colour] + ((255,) if mode == "RGBA" else ())).save(path)
        items.append(ImageItem(path.name, path, folder))
    return items


def test_wd_tags_follow_the_picture_in_bgr_with_thresholds_and_no_rating(tmp_path, wd_model):
    tagger = WdTagger(model=str(wd_model))
    assert (tagger.nchw, tagger.bgr, tagger.size, tagger.scale) == (False, True, 32, 1.0)
    captions = tagger.caption(_items(tmp_path, ["red", "green", "blue"]))
    # character first, then general tags by score; underscores become spaces, the kaomoji keeps its own
    assert captions == ["red theme, simple background, ^_^",
                        "hatsune miku, green theme, simple background, ^_^",
                        "blue theme, simple background, ^_^"]


def test_the_options_a_tagger_user_expects(tmp_path, wd_model):
    items = _items(tmp_path, ["green"])
    context = CaptionContext(trigger="zyla")
    tagger = WdTagger(model=str(wd_model), character_threshold=0.95, rating=True, exclude="^_^, Simple_Background",
                      underscores="keep", context=context)
    assert tagger.caption(items) == ["zyla, green_theme, general"]
    assert WdTagger(model=str(wd_model), general_threshold=0.9, max_tags=2).caption(items) == \
        ["hatsune miku, green theme"]
    # MCut: the widest gap in the scores instead of a fixed threshold (^_^ at 0.88 is kept)
    assert WdTagger(model=str(wd_model), general_threshold=0.9, mcut=True).caption(items) == \
        ["hatsune miku, green theme, simple background, ^_^"]
    assert mcut_threshold([0.99, 0.98, 0.6, 0.1, 0.05]) == pytest.approx(0.35)


def test_underscores_follow_the_sets_own_captions(tmp_path, wd_model):
    items = _items(tmp_path, ["red"])
    underscored = CaptionContext(existing=("1girl, long_hair, red_eyes", "1girl, short_hair, blue_sky, smile"))
    spaced = CaptionContext(existing=("1girl, long hair, red eyes", "1girl, short hair, blue sky, smile"))
    assert WdTagger(model=str(wd_model), context=underscored).caption(items) == ["red_theme, simple_background, ^_^"]
    assert WdTagger(model=str(wd_model), context=spaced).caption(items) == ["red theme, simple background, ^_^"]


def test_images_are_composited_on_white_and_padded_to_a_white_square(tmp_path, wd_model):
    tagger = WdTagger(model=str(wd_model))
    [transparent] = _items(tmp_path / "a", ["red"], mode="RGBA")
    Image.new("RGBA", (64, 64), (220, 20, 20, 0)).save(transparent.path)  # fully transparent red: white
    pixels = tagger.prepare(transparent)
    assert pixels.shape == (32, 32, 3) and pixels.min() == pytest.approx(255)
    [wide] = _items(tmp_path / "b", ["blue"], size=(128, 32))
    pixels = tagger.prepare(wide)
    assert pixels[0, 16].tolist() == pytest.approx([255, 255, 255])  # padding above
    assert pixels[16, 16].tolist() == pytest.approx([220, 20, 20], abs=2)  # blue, as BGR
    assert tagger.caption([transparent]) == ["simple background, ^_^"]


def test_a_joytag_shaped_model_gets_rgb_clip_normalisation_and_a_sigmoid(tmp_path, joytag_model):
    tagger = WdTagger(model=str(joytag_model))
    assert (tagger.nchw, tagger.bgr) == (True, False)
    assert tagger.prepare(_items(tmp_path / "p", ["red"])[0]).shape == (3, 32, 32)
    assert tagger.caption(_items(tmp_path, ["red", "blue"])) == ["red theme, simple background",
                                                                 "blue theme, simple background"]


def test_a_broken_model_is_one_line(tmp_path, wd_model):
    with pytest.raises(PluginError, match="needs model.onnx and selected_tags.csv"):
        WdTagger(model=str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a model")
    (broken / "selected_tags.csv").write_text("tag_id,name,category,count\n0,a,0,1\n")
    with pytest.raises(PluginError, match="is not an ONNX model onnxruntime can run"):
        WdTagger(model=str(broken))
    short = tmp_path / "short"
    short.mkdir()
    (short / "model.onnx").write_bytes((wd_model / "model.onnx").read_bytes())
    (short / "selected_tags.csv").write_text("tag_id,name,category,count\n0,a,0,1\n")
    with pytest.raises(PluginError, match="no output scores 1 tags"):
        WdTagger(model=str(short))
    (short / "selected_tags.csv").write_text("tag_id,name,category,count\n0,a,x,1\n")
    with pytest.raises(PluginError, match=r"selected_tags.csv:2: category 'x' is not a number"):
        WdTagger(model=str(short))
    for option, value in (("general_threshold", 2), ("underscores", "maybe"), ("mean", "1,2")):
        with pytest.raises(PluginError, match=f"-O {option}="):
            WdTagger(model=str(wd_model), **{option: value})


def test_a_hub_id_offline_says_how_to_give_a_folder(monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PluginError, match=r"captioner wd-tagger: model 'SmilingWolf/wd-swinv2-tagger-v3' is not in "
                                          r"the local Hugging Face cache .* pass --model /path/to/folder"):
        WdTagger()


def test_lorakit_caption_with_the_tagger_writes_tags_and_lints_them(tmp_path, wd_model):
    _items(tmp_path / "imgs", ["red", "green", "blue", "red", "blue"])
    run = CliRunner().invoke(cli, ["caption", str(tmp_path / "imgs"), "--captioner", "wd-tagger",
                                   "--model", str(wd_model), "-O", "wd-tagger.exclude=^_^"])
    assert run.exit_code in (0, 1), run.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "imgs" / "metadata.csv").read_text(encoding="utf-8"))))
    assert [r["text"] for r in rows] == ["red theme, simple background", "hatsune miku, green theme, simple background",
                                         "blue theme, simple background", "red theme, simple background",
                                         "blue theme, simple background"]


def test_without_onnxruntime_the_error_names_the_extra(monkeypatch, wd_model):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)
    with pytest.raises(PluginError, match=r"captioner wd-tagger needs onnxruntime: pip install 'lorakit\[wd\]'"):
        WdTagger(model=str(wd_model))

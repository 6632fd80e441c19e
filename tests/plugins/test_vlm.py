"""The `vlm` captioner on tiny random vision-language models built from configs (Qwen2-VL class, LLaVA
class, Florence-2 class), saved like the real checkpoints and loaded through the same from-folder path.

Random weights say nothing about caption quality; what is checked is the path: the prompt the
model gets (chat template, system message, trigger), that a left-padded batch gives what each image
alone gives, that the prompt tokens are trimmed, Florence-2's task prompts, and the errors."""

from __future__ import annotations

import csv
import io

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from lorakit_vlm import VlmCaptioner  # noqa: E402

from lora_core.cli import cli  # noqa: E402
from lora_core.errors import PluginError  # noqa: E402
from lora_core.protocols import ImageItem  # noqa: E402
from lora_core.testing.tiny_models import tiny_florence2, tiny_llava, tiny_qwen2_vl  # noqa: E402
from lora_core.toolkit.answers import clean_answer  # noqa: E402
from lora_core.toolkit.caption_context import CaptionContext, default_prompt  # noqa: E402

BUILDERS = {"qwen2-vl": tiny_qwen2_vl, "llava": tiny_llava}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("vlms")
    return {name: build(root / name) for name, build in {**BUILDERS, "florence2": tiny_florence2}.items()}


def _items(folder, count=3):
    folder.mkdir(parents=True, exist_ok=True)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    items = []
    for index in range(count):
        path = folder / f"{index:02d}.png"
        # different sizes and content: Qwen's dynamic resolution and LLaVA's crop both see something different
        Image.new("RGB", (80 + 20 * index, 60 + 10 * index), colours[index % 4]).save(path)
        items.append(ImageItem(path.name, path, folder))
    return items


def _reference(folder, items, prompt, system=None, max_new_tokens=12):
    """The transformers documentation's image-text-to-text recipe, one image at a time."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    answers = []
    for item in items:
        messages = ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []) + \
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=[text], images=[[item.load()]], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        answers.append(processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0])
    return [clean_answer(a) for a in answers]


@pytest.mark.parametrize("family", sorted(BUILDERS))
def test_a_batch_gives_what_the_documented_recipe_gives_one_image_at_a_time(tmp_path, models, family):
    items = _items(tmp_path)
    context = CaptionContext(trigger="zyla", form="prose")
    captioner = VlmCaptioner(model=str(models[family]), device="cpu", dtype="fp32", max_new_tokens=12,
                             context=context, system="You are a helpful image captioner.")
    prompt = default_prompt(context)
    assert captioner.default_prompt == prompt and '"zyla"' in prompt and "two to four plain sentences" in prompt
    assert captioner.caption(items) == _reference(models[family], items, prompt,
                                                  system="You are a helpful image captioner.")
    assert captioner.caption(items[:1], prompt="Tag it.") == _reference(models[family], items[:1], "Tag it.",
                                                                        system="You are a helpful image captioner.")


def test_the_prompt_reaches_the_model_through_its_chat_template(tmp_path, models):
    captioner = VlmCaptioner(model=str(models["qwen2-vl"]), device="cpu", form="tags")
    [text] = captioner._texts(1, captioner.default_prompt)
    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>List booru-style tags")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert captioner.processor.tokenizer.padding_side == "left"


def test_florence2_gets_its_task_prompt_and_decodes_whole(tmp_path, models):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    items = _items(tmp_path, 2)
    captioner = VlmCaptioner(model=str(models["florence2"]), device="cpu", dtype="fp32", max_new_tokens=8,
                             min_new_tokens=4, form="prose")
    assert captioner.florence and captioner.default_prompt == "<MORE_DETAILED_CAPTION>"
    processor = AutoProcessor.from_pretrained(models["florence2"])
    model = AutoModelForImageTextToText.from_pretrained(models["florence2"]).eval()
    inputs = processor(text=["<MORE_DETAILED_CAPTION>"] * 2, images=[i.load() for i in items], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=8, min_new_tokens=4, do_sample=False)
    expected = [clean_answer(a) for a in processor.batch_decode(out, skip_special_tokens=True)]
    assert captioner.caption(items) == expected and all(expected)
    with pytest.raises(PluginError, match="form='haiku'"):
        VlmCaptioner(model=str(models["florence2"]), device="cpu", form="haiku")


def test_bad_models_and_options_are_one_line(tmp_path, models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PluginError, match=r"captioner vlm: model 'Qwen/Qwen2.5-VL-3B-Instruct' is not in the local "
                                          r"Hugging Face cache .*pass --model /path/to/folder"):
        VlmCaptioner(device="cpu")
    with pytest.raises(PluginError, match="-O max_new_tokens=0"):
        VlmCaptioner(model=str(models["llava"]), device="cpu", max_new_tokens=0)
    not_a_vlm = tmp_path / "blip-like"
    not_a_vlm.mkdir()
    (not_a_vlm / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(PluginError, match="captioner vlm: model .* could not be loaded"):
        VlmCaptioner(model=str(not_a_vlm), device="cpu")


def test_lorakit_caption_with_the_vlm_writes_cleaned_captions(tmp_path, models, registry):
    from lora_core.captioning import postprocess
    from lora_core.config import resolve_config

    items = _items(tmp_path / "imgs", 2)
    run = CliRunner().invoke(cli, ["caption", str(tmp_path / "imgs"), "--captioner", "vlm", "--model",
                                   str(models["llava"]), "--device", "cpu", "-O", "max_new_tokens=6",
                                   "--prompt", "Describe the image."])
    assert run.exit_code in (0, 1), run.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "imgs" / "metadata.csv").read_text(encoding="utf-8"))))
    expected = _reference(models["llava"], items, "Describe the image.", max_new_tokens=6)
    assert [r["file_name"] for r in rows] == ["00.png", "01.png"]
    # then the lint post-processing, as for every captioner (it tidies a random model's blanks and separators)
    config = resolve_config({}, registry.config_sections)
    assert [r["text"] for r in rows] == [c for c in postprocess(expected, config, registry)]

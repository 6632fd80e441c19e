"""The CLIP scorer and `--vote clip`, on a tiny random CLIP (transformers `CLIPModel`) with the real
CLIP tokenizer written offline, loaded from its folder like a downloaded checkpoint."""

from __future__ import annotations

import csv
import io
import json
import types
from pathlib import Path

import pytest

import lora_core
from lora_core import hookimpl
from lora_core.api import LintOptions, load_config
from lora_core.captioning import CaptionOptions, caption_folder, list_images
from lora_core.testing import registry_with, write_png

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def pictures(folder: Path) -> Path:
    for i, color in enumerate([(250, 20, 160), (20, 200, 250), (240, 240, 30)]):
        write_png(folder / f"{i}.png", 70 + 10 * i, 64, color)
    return folder


def test_scores_are_the_cosine_of_clip_embeddings(tiny_clip, tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    from lora_core.toolkit.clip_scoring import ClipScorer

    scorer = ClipScorer(str(tiny_clip), device="cpu")
    items = list_images(pictures(tmp_path / "imgs"))
    images = [item.load() for item in items]
    candidates = [["a neon city at night", "a cat"], ["rain"], ["fog over a street", "a photo", "x " * 200]]
    scores = scorer.score_candidates(images, candidates)
    assert [len(s) for s in scores] == [2, 1, 3]
    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    for image, texts, got in zip(images, candidates, scores):
        with torch.inference_mode():
            out = model(**processor(text=texts, images=[image], return_tensors="pt", padding=True, truncation=True,
                                    max_length=77))
        expected = (out.text_embeds @ out.image_embeds[0]).tolist()  # both already L2-normalised
        assert got == pytest.approx(expected, abs=1e-5)


def fixed_captioner(name: str, text: str):
    class Fixed:
        def __init__(self, model=None, device="auto", dtype="auto"):
            pass

        def caption(self, items, prompt=None):
            return [f"{text} {item.name[0]}" for item in items]

    @hookimpl
    def register_captioners(register):
        register(name, Fixed)

    return types.SimpleNamespace(register_captioners=register_captioners)


def test_clip_vote_keeps_the_best_scoring_candidate_per_image(tiny_clip, tmp_path):
    from lora_core.toolkit.clip_scoring import ClipScorer

    folder = pictures(tmp_path / "imgs")
    registry = registry_with(fixed_captioner("one", "a neon city at night"), fixed_captioner("two", "a cat on a sofa"),
                             fixed_captioner("three", "glowing fog"), names=["one", "two", "three"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    options = CaptionOptions(["one", "two", "three"], vote="clip", clip_model=str(tiny_clip), keep_candidates=True,
                             device="cpu")
    result = caption_folder(folder, options, config, registry)
    rows = list(csv.DictReader(io.StringIO((folder / "metadata.csv").read_text(encoding="utf-8"), newline="")))
    scorer = ClipScorer(str(tiny_clip), device="cpu")
    for item, row in zip(list_images(folder), rows):
        detail = json.loads(row["candidates"])
        texts = [detail["candidates"][n] for n in ("one", "two", "three")]
        (scores,) = scorer.score_candidates([item.load()], [texts])
        best = max(range(3), key=lambda i: scores[i])
        assert detail["vote"] == "clip" and detail["chosen"] == ("one", "two", "three")[best]
        assert result.chosen[item.name] == detail["chosen"] and row["text"] == texts[best]
        assert [detail["scores"][n] for n in ("one", "two", "three")] == pytest.approx(scores, abs=1e-4)


def test_a_missing_clip_model_is_one_line(tmp_path, monkeypatch):
    from lora_core.toolkit.clip_scoring import ClipScorer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(lora_core.PluginError, match="--clip-model: model 'openai/clip-vit-large-patch14' is not in "
                                                    "the local Hugging Face cache and the hub is offline"):
        ClipScorer(device="cpu")

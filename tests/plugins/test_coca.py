"""The coca captioner and its decoding loop: the loop on hand-made next-token distributions (so
greedy, beam, top-k and top-p are checked exactly), the plugin on a tiny random CoCa saved in the
hub layout and loaded through open_clip's `local-dir:` path like a downloaded checkpoint."""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lora_core
from lora_core.cli import cli
from lora_core.testing import write_pngs

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from lorakit_coca.decoding import DecodeSettings, decode  # noqa: E402

START, END, A, B, C, D = 0, 1, 2, 3, 4, 5
# A small language model as a table: the next-token probabilities after each prefix's last token.
TABLE = {
    START: {A: 0.55, B: 0.45},
    A: {C: 0.34, D: 0.33, END: 0.33},  # greedy takes A (0.55), then nothing is likely
    B: {END: 0.95, C: 0.05},           # B then END: 0.45 * 0.95 = 0.43, the best sequence
    C: {END: 1.0},
    D: {END: 1.0},
}


def table_step(tokens, rows):
    logits = torch.full((tokens.shape[0], 6), float("-inf"))
    for i, last in enumerate(tokens[:, -1].tolist()):
        for token, p in TABLE.get(last, {END: 1.0}).items():
            logits[i, token] = math.log(p)
    return logits


def settings(method: str, **kw) -> DecodeSettings:
    return DecodeSettings(method=method, min_new_tokens=0, max_new_tokens=5, length_penalty=0.0, **kw)


def test_beam_search_finds_the_likelier_caption_greedy_misses():
    assert decode(table_step, 2, START, END, settings("greedy")) == [[A, C], [A, C]]
    assert decode(table_step, 2, START, END, settings("beam", num_beams=2)) == [[B], [B]]
    assert decode(table_step, 1, START, END, settings("beam", num_beams=1)) == [[A, C]]  # one beam is greedy


def test_top_k_one_and_a_tiny_top_p_are_greedy_and_sampling_is_seeded():
    for method in ("top-k", "top-p"):
        out = decode(table_step, 3, START, END, settings(method, top_k=1, top_p=0.01, seed=3))
        assert out == [[A, C]] * 3
    seeded = [decode(table_step, 50, START, END, settings("top-p", top_p=1.0, seed=7)) for _ in range(2)]
    assert seeded[0] == seeded[1]
    assert {tuple(x) for x in seeded[0]} >= {(A, C), (B,)}  # sampling explores


def test_min_new_tokens_forbids_an_early_end():
    out = decode(table_step, 1, START, END, DecodeSettings("beam", min_new_tokens=2, max_new_tokens=5, num_beams=2,
                                                          length_penalty=0.0))
    # END is masked before the softmax (as transformers does): after B, C takes all of its mass.
    assert out == [[B, C]]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="decoding 'nucleus'"):
        DecodeSettings("nucleus")
    with pytest.raises(ValueError, match="top_p"):
        DecodeSettings("top-p", top_p=0)


@pytest.fixture(scope="module")
def tiny_coca(tmp_path_factory) -> Path:
    from lora_core.testing.tiny_models import tiny_coca

    torch.set_num_threads(1)
    return tiny_coca(tmp_path_factory.mktemp("tiny-coca"))


def test_beam_search_on_the_tiny_coca_scores_at_least_as_high_as_greedy(tiny_coca, tmp_path):
    from lorakit_coca import CocaCaptioner

    from lora_core.captioning import list_images

    captioner = CocaCaptioner(model=str(tiny_coca), device="cpu")
    model, start = captioner.model, captioner.tokenizer.sot_token_id
    pixels = torch.stack([captioner.prepare(item) for item in list_images(write_pngs(tmp_path / "imgs", 3))])
    with torch.inference_mode():
        latent, embeddings = model._encode_image(pixels)

        def step(tokens, rows):
            return model(None, tokens, image_latent=latent[rows], image_embs=embeddings[rows],
                         output_labels=False)["logits"][:, -1]

        def log_probability(row, ids):  # of the six generated tokens (no end: min = max length)
            tokens = torch.tensor([[start, *ids]])
            logits = model(None, tokens[:, :-1], image_latent=latent[row:row + 1], image_embs=embeddings[row:row + 1],
                           output_labels=False)["logits"].float()
            return float(torch.log_softmax(logits, -1)[0, torch.arange(len(ids)), tokens[0, 1:]].sum())

        fixed = dict(max_new_tokens=6, min_new_tokens=6, num_beams=4, length_penalty=0.0)
        greedy = decode(step, 3, start, captioner.tokenizer.eot_token_id, DecodeSettings("greedy", **fixed))
        beam = decode(step, 3, start, captioner.tokenizer.eot_token_id, DecodeSettings("beam", **fixed))
        scores = [(log_probability(i, beam[i]), log_probability(i, greedy[i])) for i in range(3)]
    assert all(len(ids) == 6 for ids in greedy + beam)
    assert all(b >= g - 1e-4 for b, g in scores), scores
    assert any(b > g + 1e-3 for b, g in scores), scores  # beam search really searched


def test_coca_captions_a_folder_through_the_command(tiny_coca, tmp_path):
    folder = write_pngs(tmp_path / "imgs", 4)
    (folder / "lorakit.toml").write_text('[entities]\ntrigger = "cybrpnk"\n[lint]\nselect = ["LK0"]\n',
                                         encoding="utf-8")
    result = CliRunner().invoke(cli, ["caption", str(folder), "--captioner", "coca", "--model", str(tiny_coca),
                                      "--device", "cpu", "--batch-size", "3", "-O", "coca.decoding=top-k",
                                      "-O", "max_new_tokens=5", "-O", "seed=1"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    rows = list(csv.DictReader(io.StringIO((folder / "metadata.csv").read_text(encoding="utf-8"), newline="")))
    assert [r["file_name"] for r in rows] == [f"img_{i}.png" for i in range(4)]
    assert all(r["text"].startswith("cybrpnk") for r in rows)  # post-processed like every captioner's drafts


def test_every_decoding_runs_batched_and_matches_single_images(tiny_coca, tmp_path):
    from lorakit_coca import CocaCaptioner

    from lora_core.captioning import list_images

    items = list_images(write_pngs(tmp_path / "imgs", 3))
    for method in ("beam", "greedy", "top-k", "top-p"):
        captioner = CocaCaptioner(model=str(tiny_coca), device="cpu", decoding=method, max_new_tokens=5, seed=0)
        batch = captioner.caption(items)
        assert len(batch) == 3 and all(isinstance(c, str) for c in batch)
        if method in ("beam", "greedy"):  # deterministic: a batch gives what single images give
            assert batch == [captioner.caption([item])[0] for item in items]


def test_model_errors_are_one_line(tiny_coca, tmp_path):
    from lorakit_coca import CocaCaptioner

    with pytest.raises(lora_core.PluginError, match="no open_clip_config.json"):
        CocaCaptioner(model=str(tmp_path), device="cpu")
    with pytest.raises(lora_core.PluginError, match="unknown model 'coca_tiny_nope'"):
        CocaCaptioner(model="coca_tiny_nope", device="cpu")
    with pytest.raises(lora_core.PluginError, match="max_new_tokens must be below the model's context length 76"):
        CocaCaptioner(model=str(tiny_coca), device="cpu", max_new_tokens=80)
    with pytest.raises(lora_core.PluginError, match="captioner coca: decoding 'nucleus'"):
        CocaCaptioner(model=str(tiny_coca), device="cpu", decoding="nucleus")


def test_missing_pretrained_weights_offline_is_one_line_and_fast(tmp_path):
    folder = write_pngs(tmp_path / "imgs", 1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "lora_core.cli", "caption", str(folder), "--captioner", "coca",
                          "--model", "ViT-B-32", "--device", "cpu"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [ln for ln in run.stderr.splitlines() if ln.startswith("lorakit: error:")]
    assert "captioner coca: model 'laion/mscoco_finetuned_CoCa-ViT-B-32-laion2B-s13B-b90k' is not in the local " \
           "Hugging Face cache and the hub is offline" in line and "--model /path/to/folder" in line
    assert time.perf_counter() - started < 60  # torch/open_clip import dominates; the lookup is immediate


def test_a_torchvision_that_cannot_load_is_named_with_the_fix(tmp_path):
    # sys.modules[name] = None makes `import torchvision` fail, as a build for another torch does
    code = ("import sys\nsys.modules['torchvision'] = None\n"
            "from lorakit_coca import CocaCaptioner\n"
            "from lora_core.errors import PluginError\n"
            "try:\n    CocaCaptioner(device='cpu')\nexcept PluginError as exc:\n    print('ERROR', exc)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "ERROR captioner coca: open_clip needs torchvision, and torchvision cannot be imported next to this " \
           "torch" in run.stdout, run.stdout + run.stderr[-1500:]
    assert "install the torchvision release built for your torch" in run.stdout

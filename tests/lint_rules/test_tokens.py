"""LK5xx CLIP token rules, and the exact tokenizer they use."""

from __future__ import annotations

import json
import random

import pytest

from lora_core.toolkit.clip_tokens import END_OF_TEXT, START_OF_TEXT, TokenizerUnavailable, from_folder, load_tokenizer


def test_exact_clip_ids():
    tokenizer = load_tokenizer()
    assert [START_OF_TEXT, *tokenizer.encode("a photo of a cat"), END_OF_TEXT] == [
        49406, 320, 1125, 539, 320, 2368, 49407]
    assert tokenizer.count("A  photo of a CAT") == 5
    assert tokenizer.pieces("cybrpnk") == ["cy", "br", "pn", "k"]


def test_counts_of_tag_lists_and_sentences_are_exact():
    """`counts` splits tag lists into cached tags (the comma after each counted with it) and other
    captions into words: both must give what encoding the caption gives."""
    tokenizer = load_tokenizer()
    atoms = ["neon", "city", "rain!", "(masterpiece)", "a,b", "x_y", "", " ", ",", "!!", "Café", "&amp;",
             "ß", "l'eau", "1girl", "hello-world", "…", "\t", "OK?"]
    rng = random.Random(7)
    tag_lists = ["".join(rng.choice(atoms) + rng.choice([", ", ",", " , ", ", , "]) for _ in range(rng.randint(1, 8)))
                 + rng.choice(atoms) for _ in range(600)]
    sentences = [" ".join(rng.choice(atoms) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    for captions in (tag_lists, sentences):
        assert tokenizer.counts(captions) == [len(tokenizer.encode(c)) for c in captions]


def test_token_overflow_quotes_what_is_cut(lint_with_config):
    long = "cybrpnk, " + ", ".join(f"detail number {i}" for i in range(30)) + ", in the style of neon noir"
    rows = [("a.png", long), ("b.png", "cybrpnk, neon city, rain")]
    (violation,) = lint_with_config(rows, "", select=["LK501"])[0]
    assert violation.image == "a.png" and "(max 75); cut off: `" in violation.message
    assert "in the style of neon noir` (model unknown; tag captions" in violation.message
    assert violation.severity.value == "warning"  # the model is assumed, not known
    assert violation.data["tokens"] > 75
    assert list(lint_with_config(rows, "[tokens]\nmax = 225\n", select=["LK501"])[0]) == []
    (pinned,) = lint_with_config(rows, '[dataset]\nmodel = "sdxl"\n', select=["LK501"])[0]
    assert pinned.severity.value == "error" and "(SDXL: 75 CLIP tokens" in pinned.message
    assert list(lint_with_config(rows, '[dataset]\nmodel = "flux"\n', select=["LK501"])[0]) == []


PROSE = ("A young woman with long flowing brown hair and reddish-brown eyes sits on the edge of a desk in a "
         "classroom, framed in a full-body shot from a low angle near the floor. Her visible eye is red, her mouth "
         "is slightly open, and she wears dangling earrings, a small hair clip, and a white jacket draped over a dark "
         "top with a tasseled tie, while the warm afternoon light falls across the room behind her.")


def test_a_set_of_long_prose_with_the_model_unknown_is_one_dataset_finding(lint_with_config):
    """FLUX / Krea sets: 150-word prose in every caption is right for a T5 or LLM encoder and
    wrong for CLIP; with the model unknown that is said once, not as an error per caption."""
    rows = [(f"{i}.png", f"[trigger]. {PROSE} Detail {i}.") for i in range(12)]
    (finding,) = lint_with_config(rows, "", select=["LK501"])[0]
    assert finding.severity.value == "info" and finding.image is None
    assert finding.message.startswith("12 of 12 captions are longer than 75 CLIP tokens")
    assert '[dataset] model = "flux"' in finding.message
    found = list(lint_with_config(rows, '[dataset]\nmodel = "sd15"\n', select=["LK501"])[0])
    assert len(found) == 12 and {v.severity.value for v in found} == {"error"}
    assert list(lint_with_config(rows, '[dataset]\nmodel = "krea"\n', select=["LK501"])[0]) == []


def test_a_few_long_captions_in_a_set_that_fits_stay_per_row(lint_with_config):
    rows = [(f"{i}.png", f"a photo of a red fox number {i} in the snow") for i in range(10)]
    rows.append(("long.png", PROSE))
    (finding,) = lint_with_config(rows, "", select=["LK501"])[0]
    assert finding.image == "long.png" and finding.severity.value == "warning"
    assert "10 of 11 captions fit 75 CLIP tokens, so a CLIP model (SD 1.x / SDXL) is assumed" in finding.message


def test_an_unknown_model_is_a_config_error(lint_with_config):
    import lora_core

    with pytest.raises(lora_core.ConfigError, match="unknown model `sd9`"):
        lint_with_config([("a.png", "x")], '[dataset]\nmodel = "sd9"\n', select=["LK501"])


def test_trigger_token_split(lint_with_config):
    rows = [("a.png", "cybrpnk, neon city, rain")]
    (violation,) = lint_with_config(rows, '[entities]\ntrigger = "cybrpnk"\n', select=["LK502"])[0]
    assert violation.message == "trigger `cybrpnk` is 4 CLIP tokens (cy|br|pn|k)"
    assert violation.location.path.name == "lorakit.toml" and violation.location.line == 2
    (common,) = lint_with_config(rows, '[entities]\ntrigger = "city"\n', select=["LK502"])[0]
    assert "is a common word to CLIP" in common.message


def test_tokenizer_folder_runs_the_bpe(tmp_path):
    # A tiny vocabulary in the Hugging Face layout: "ab</w>" is one merged token.
    folder = tmp_path / "tok"
    folder.mkdir()
    vocab = {"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "c</w>": 5, ",</w>": 6}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\na b</w>\n", encoding="utf-8")
    tokenizer = from_folder(folder)
    assert tokenizer.encode("ab, AB c b") == [4, 6, 4, 5, 3]
    assert tokenizer.count("ab ab") == 2


def test_missing_vocabulary_is_reported_once(lint_with_config, monkeypatch):
    import lora_core.toolkit.clip_tokens as clip_tokens

    def unavailable(*args):
        raise TokenizerUnavailable("instant-clip-tokenizer is not installed")

    monkeypatch.setattr(clip_tokens, "_load", unavailable)
    rows = [("a.png", "x " * 100), ("b.png", "y " * 100)]
    (notice,) = lint_with_config(rows, "", select=["LK501"])[0]
    assert notice.severity.value == "info" and "CLIP token counts skipped" in notice.message


def test_bad_tokenizer_setting(tmp_path):
    with pytest.raises(TokenizerUnavailable, match="is not a folder"):
        load_tokenizer(str(tmp_path / "nope"))


def test_cut_offset_by_chunks_is_the_pretoken_walk():
    """The chunk-cached cut search gives the offset the plain pre-token walk gives."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from lora_core.toolkit.clip_tokens import PRETOKEN, TokenizerUnavailable, clean, load_tokenizer

    try:
        tokenizer = load_tokenizer()
    except TokenizerUnavailable:
        pytest.skip("no CLIP vocabulary installed")

    def walk(caption: str, limit: int) -> int | None:
        total = 0
        for match in PRETOKEN.finditer(caption):
            total += tokenizer._counts[clean(match.group())]
            if total > limit:
                return match.start()
        return None

    words = ["cybrpnk", "neon", "City", "rain,", "İstanbul", "x" * 300, "a.b", "don't", "é", "  ", "\t", "1girl",
             "neon city", "a.b.", "", "long_hair", "(masterpiece:1.2)"]

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(words), max_size=60), st.integers(min_value=1, max_value=40),
           st.sampled_from([" ", ", ", ",", ", ,"]))
    def check(parts, limit, separator):
        caption = separator.join(parts)
        assert tokenizer.cut_offset(caption, limit) == walk(caption, limit), (caption, limit)

    check()


def test_the_core_install_counts_exactly_with_the_bundled_vocabulary(monkeypatch):
    """Without instant-clip-tokenizer and open_clip, lorakit's copy of CLIP's merges counts the
    same tokens as the Rust tokenizer (LK501/LK502 need no optional package)."""
    import lora_core.toolkit.clip_tokens as clip_tokens

    captions = ["cybrpnk, neon city, rain-soaked alley, glowing kanji signs", "a photo of sks dog on the beach",
                "(masterpiece:1.2), 1girl, long_hair, looking_at_viewer", "café, naïve 東京 😀 &amp; don't",
                "x" * 300, ""]
    try:
        reference = clip_tokens.from_instant_clip_tokenizer()
    except TokenizerUnavailable:
        pytest.skip("no reference tokenizer installed")

    def missing():
        raise TokenizerUnavailable("instant-clip-tokenizer is not installed")

    monkeypatch.setattr(clip_tokens, "from_instant_clip_tokenizer", missing)
    monkeypatch.setattr(clip_tokens, "_open_clip_bpe_file", lambda: None)
    clip_tokens._load.cache_clear()
    try:
        bundled = load_tokenizer()
        assert bundled.source.startswith("open_clip vocabulary") and "lora_core" in bundled.source
        assert [bundled.encode(c) for c in captions] == [reference.encode(c) for c in captions]
        assert bundled.counts(captions) == reference.counts(captions)
    finally:
        clip_tokens._load.cache_clear()

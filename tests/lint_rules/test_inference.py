"""Dataset-aware lint: what lorakit infers from a dataset, and the findings that rest on it.

The realistic corpora (tests/corpora.py) are the proof: on every clean dataset, a zero-config
lint and an init-then-lint report no warning and no error; on the planted versions, every
planted failure is reported on its row and nothing else is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import load_test_module

import lora_core
from lora_core.cli import cli
from lora_core.config import tomllib
from lora_core.testing import make_csv_dataset, make_sidecar_dataset
from lora_core.toolkit.conventions import find_variant, is_rare_token, osa_distance, subject_mentions
from lora_core.violations import Severity

corpora = load_test_module("corpora")
PLANTED = [name for name in corpora.DATASETS if name not in corpora.CLEAN_ONLY]
IMAGE_RULES = ["LK6"]  # judged on real photographs (bench/), not on the corpora's placeholder PNGs


def _serious(result) -> dict[str | None, list]:
    rows: dict[str | None, list] = {}
    for violation in result:
        if violation.severity in (Severity.ERROR, Severity.WARNING):
            rows.setdefault(violation.image, []).append(violation)
    return rows


def _lint(path: Path, registry, **options):
    result = lora_core.lint(path, registry=registry, ignore=IMAGE_RULES, **options)
    assert not result.crashes, [c.describe() for c in result.crashes]
    return result


def _init(path: Path) -> str:
    shown = CliRunner().invoke(cli, ["init", str(path)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    folder = path if path.is_dir() else path.parent
    return (folder / "lorakit.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(corpora.DATASETS))
def test_clean_dataset_zero_config_and_init_then_lint_are_silent(name, tmp_path, registry):
    built = corpora.build(name, tmp_path)
    found = _serious(_lint(built.path, registry, isolated=True))
    assert found == {}, {k: [f"{v.code} {v.message}" for v in vs] for k, vs in found.items()}
    _init(built.path)
    found = _serious(_lint(built.path, registry))
    assert found == {}, {k: [f"{v.code} {v.message}" for v in vs] for k, vs in found.items()}


@pytest.mark.parametrize("name", PLANTED)
@pytest.mark.parametrize("with_init", [False, True], ids=["zero-config", "init-config"])
def test_planted_failures_are_reported_on_their_rows_only(name, with_init, tmp_path, registry):
    built = corpora.build(name, tmp_path, planted=True)
    assert built.planted
    if with_init:
        _init(built.path)
    found = _serious(_lint(built.path, registry, isolated=not with_init))
    missed = sorted(image for image in built.planted if image not in found)
    assert missed == [], f"planted failures not reported: {[(m, built.planted[m]) for m in missed]}"
    wrong = {image: [f"{v.code} {v.message}" for v in vs] for image, vs in found.items()
             if image is not None and image not in built.planted}
    assert wrong == {}
    if built.dataset_level:
        assert None in found  # the identity balance is a finding about the dataset


def test_inferred_findings_say_what_was_inferred_and_how_to_pin_it(tmp_path, registry):
    built = corpora.build("cyberpunk_booru", tmp_path, planted=True)
    by_code = {}
    for violation in _lint(built.path, registry, isolated=True):
        by_code.setdefault(violation.code, violation)
    assert by_code["LK305"].message == ("trigger `cybrpnk_style` is missing (trigger `cybrpnk_style` inferred from 35 "
                                        "of 40 captions; pin it with [entities] trigger)")
    assert by_code["LK305"].severity is Severity.ERROR
    assert by_code["LK307"].message.startswith("`cybrpnk_styel` is the trigger `cybrpnk_style` written another way "
                                               "(a typo); trigger `cybrpnk_style` inferred from 35 of 40 captions")
    assert by_code["LK110"].message == "tag `long hair` is written `long_hair` 20 times in this set"


def test_no_infer_checks_only_the_config(tmp_path, registry):
    built = corpora.build("cyberpunk_booru", tmp_path, planted=True)
    codes = {v.code for v in _lint(built.path, registry, isolated=True, infer=False)}
    assert not codes & {"LK305", "LK307", "LK110"}
    (built.path / "lorakit.toml").write_text("[infer]\nenabled = false\n", encoding="utf-8")
    assert not {v.code for v in _lint(built.path, registry)} & {"LK305", "LK307", "LK110"}
    # --isolated ignores that file and still infers
    assert {"LK305", "LK307"} <= {v.code for v in _lint(built.path, registry, isolated=True)}
    shown = CliRunner().invoke(cli, ["lint", str(built.path), "--isolated", "--no-infer", "--format", "concise",
                                     "--ignore", "LK6"])
    assert "LK305" not in shown.output and "LK307" not in shown.output


def test_configured_values_win_over_inferred_ones(tmp_path, registry):
    built = corpora.build("cyberpunk_booru", tmp_path, planted=True)
    (built.path / "lorakit.toml").write_text('[entities]\ntrigger = "cybrpnk_style"\n', encoding="utf-8")
    missing = [v for v in _lint(built.path, registry) if v.code == "LK305"]
    assert len(missing) == 3 and all(v.message == "trigger `cybrpnk_style` is missing" for v in missing)
    # `trigger = ""` says "no trigger": nothing is inferred in its place
    (built.path / "lorakit.toml").write_text('[entities]\ntrigger = ""\n', encoding="utf-8")
    assert not [v for v in _lint(built.path, registry) if v.code in ("LK305", "LK307")]


def test_multi_concept_fix_inserts_each_folders_own_trigger(tmp_path, registry):
    built = corpora.build("multi_concept", tmp_path, planted=True)
    lora_core.fix(built.path, registry=registry, unsafe=True, select=["LK305"], isolated=True)
    for image in built.planted:
        caption = (built.path / image).with_suffix(".txt").read_text(encoding="utf-8")
        own = "cybrpnk" if image.startswith("10_cybrpnk_city") else "wtrclr"
        assert caption.startswith(own + ", "), (image, caption)
    assert not [v for v in _lint(built.path, registry, isolated=True) if v.code == "LK305"]


def test_a_configured_trigger_is_never_inserted_into_another_concepts_captions(tmp_path, registry):
    built = corpora.build("multi_concept", tmp_path)
    (built.path / "lorakit.toml").write_text('[entities]\ntrigger = "cybrpnk"\n', encoding="utf-8")
    foreign = [v for v in _lint(built.path, registry) if v.code == "LK305"]
    assert foreign and all(v.image.startswith("10_wtrclr_fox/") and v.fix is None for v in foreign)
    assert "no caption of concept folder `10_wtrclr_fox` has it" in foreign[0].message
    before = sorted(p.read_text() for p in built.path.glob("10_wtrclr_fox/*.txt"))
    lora_core.fix(built.path, registry=registry, unsafe=True)
    assert sorted(p.read_text() for p in built.path.glob("10_wtrclr_fox/*.txt")) == before
    # per-concept triggers in the config: every folder has its own, nothing is reported
    (built.path / "lorakit.toml").write_text(
        '[entities]\nconcept-triggers = { "cybrpnk_city" = "cybrpnk", "wtrclr_fox" = "wtrclr" }\n', encoding="utf-8")
    assert not [v for v in _lint(built.path, registry) if v.code == "LK305"]


def test_tag_spelling_fix_uses_the_sets_dominant_form(tmp_path, registry):
    built = corpora.build("cyberpunk_booru", tmp_path, planted=True)
    lora_core.fix(built.path, registry=registry, select=["LK110"], isolated=True)
    captions = [p.read_text(encoding="utf-8") for p in built.path.glob("*.txt")]
    assert not any("long hair" in c for c in captions)
    assert sum("long_hair" in c for c in captions) == 22


def test_init_never_proposes_a_common_word_or_a_minority_style(tmp_path):
    rows = [(f"{i}.png", f"face, close-up, {look}, studio light") for i, look in
            enumerate(["smiling", "laughing", "serious", "eyes closed", "looking up", "profile", "frowning",
                       "surprised", "winking", "neutral", "squinting", "yawning"])]
    rows[3] = ("3.png", "face, close-up, eyes closed, cinematic lighting")
    path = make_csv_dataset(tmp_path / "faces", rows)
    text = _init(path)
    config = tomllib.loads(text)
    assert "trigger" not in config["entities"] and "required" not in config["style"]
    assert "No rare token is in most captions" in text


def test_init_pins_trigger_keep_tokens_and_per_concept_triggers(tmp_path):
    built = corpora.build("cyberpunk_booru", tmp_path)
    config = tomllib.loads(_init(built.path))
    assert config["entities"]["trigger"] == "cybrpnk_style" and config["entities"]["keep-tokens"] == 1
    built = corpora.build("multi_concept", tmp_path)
    config = tomllib.loads(_init(built.path))
    assert config["entities"]["concept-triggers"] == {"cybrpnk_city": "cybrpnk", "wtrclr_fox": "wtrclr"}
    built = corpora.build("kohya_identities", tmp_path)
    text = _init(built.path)
    assert "identities" not in tomllib.loads(text)["entities"]  # checked folder by folder instead
    assert '# identities = ["person_A", "person_B"]' in text
    built = corpora.build("watercolor_foxes", tmp_path)
    config = tomllib.loads(_init(built.path))
    assert "watercolor" in config["style"]["required"] and "photorealistic" in config["style"]["conflicting"]


def test_identity_folder_without_any_token_in_its_captions(tmp_path, registry):
    """`10_person_A/` whose captions never name person_A: the folder name is the identity."""
    files = {f"10_person_A/{i}.png": f"portrait, front view, look {i}, studio light" for i in range(6)}
    files.update({f"10_person_B/{i}.png": f"person_B, portrait, side view {i}, window light" for i in range(6)})
    make_sidecar_dataset(tmp_path / "ids", files)
    found = [v for v in _lint(tmp_path / "ids", registry, isolated=True) if v.code == "LK301"]
    assert len(found) == 6 and all(v.image.startswith("10_person_A/") for v in found)
    assert "`portrait` without the identity token `person_A`" in found[0].message
    assert "no caption has it yet" in found[0].message


# -- the inference building blocks ----------------------------------------------------------------


@pytest.mark.parametrize("token, rare", [
    ("cybrpnk", True), ("sks", True), ("ohwx", True), ("cybrpnk_style", True), ("sks_dog", True), ("misaki", True),
    ("face", False), ("cinematic", False), ("1girl", False), ("long_hair", False), ("photorealistic", False),
    ("absurdres", False), ("watercolor", False), ("lowpoly", False), ("person_A", False), ("freckles", False),
])
def test_rare_tokens_are_never_common_words_style_words_or_booru_tags(token, rare):
    assert is_rare_token(token) is rare


def test_variants_of_a_token():
    assert find_variant("cybrpnk_styel, neon", "cybrpnk_style").kind == "typo"
    assert find_variant("Cybrpnk, neon", "cybrpnk").kind == "case"
    assert find_variant("cybrpnk style, x", "cybrpnk_style").text == "cybrpnk style"
    assert find_variant("cybrpnk stlye, rain", "cybrpnk_style").text == "cybrpnk stlye"
    assert find_variant("person_B, portrait", "person_A", ["person_B"]) is None  # another identity, not a typo
    assert find_variant("sky, city", "sks") is None  # too short for typos; `sky` is a word
    assert find_variant("cyberpunk city", "cybrpnk") is None  # a common word is never a typo of the trigger
    assert osa_distance("styel", "style", 2) == 1 and osa_distance("abc", "xyz", 1) == 2


def test_subject_mentions_tell_specific_phrasing_from_generic_words():
    found = [(m.kind.name, m.phrase) for m in subject_mentions(
        "a steampunk gear device on a table, machine, landscape painting, an ink-wash landscape, machine parts")]
    assert found == [("machine", "steampunk gear device"), ("machine", None), ("landscape", None),
                     ("landscape", "ink-wash landscape")]


def test_plugins_and_config_extend_the_style_lexicon(tmp_path):
    from lora_core import hookimpl
    from lora_core.plugins import load_plugins

    class Gothic:
        @hookimpl
        def register_lexicon(self, register):
            register("style", "gothic", ["gothic", "dark gothic"], compatible=["oil painting"])
            register("subject", "weapon", ["weapon"], heads=["sword", "blade", "weapon"])

    registry = load_plugins(extra=[("gothic", Gothic())])
    assert registry.plugins["gothic"].status == "loaded", registry.plugins["gothic"].error
    rows = [(f"{i}.png", f"gothic, ruined cathedral {i}, crows, moonlight, flamberge sword") for i in range(12)]
    rows[4] = ("4.png", "gothic, ruined cathedral, anime style, crows, moonlight")
    rows[7] = ("7.png", "gothic, crypt entrance, a weapon, crows, moonlight")
    path = make_csv_dataset(tmp_path / "crypts", rows)
    found = {v.image: v for v in lora_core.lint(path, registry=registry, isolated=True, ignore=IMAGE_RULES)
             if v.severity is not Severity.INFO}
    assert found["4.png"].code == "LK205" and "conflicts with the set's style `gothic`" in found["4.png"].message
    assert found["7.png"].code == "LK203" and "say `flamberge sword`" in found["7.png"].message
    assert set(found) == {"4.png", "7.png"}
    # the same group from [infer] styles, without the plugin
    (tmp_path / "crypts" / "lorakit.toml").write_text('[infer]\nstyles = { gothic = ["gothic"] }\n',
                                                      encoding="utf-8")
    found = [v for v in lora_core.lint(path, registry=load_plugins(builtin_only=True)) if v.code == "LK205"]
    assert [v.image for v in found] == ["4.png"]


def test_trigger_fix_puts_the_trigger_before_its_class_word(tmp_path, registry):
    built = corpora.build("sks_dog", tmp_path, planted=True)
    lora_core.fix(built.path, registry=registry, unsafe=True, select=["LK305"], isolated=True)
    text = built.path.read_text(encoding="utf-8")
    assert "a photo of sks dog sitting on green grass\n" in text  # was "a photo of a dog sitting ..."
    assert "sks, " not in text


def test_the_captions_spelling_of_a_folder_token_wins(tmp_path, registry):
    """`10_person_A/` whose captions all say `person_a`: their convention, not the folder's."""
    files = {f"10_person_A/a{i}.png": f"person_a, portrait, look {i}, studio light" for i in range(6)}
    files.update({f"10_person_B/b{i}.png": f"person_b, portrait, side {i}, window light" for i in range(6)})
    files["10_person_B/b9.png"] = "person_a, portrait, swapped, window light"
    make_sidecar_dataset(tmp_path / "ids", files)
    found = [(v.image, v.code) for v in _lint(tmp_path / "ids", registry, isolated=True)
             if v.severity is not Severity.INFO]
    assert found == [("10_person_B/b9.png", "LK308")]


def test_identity_folders_beside_a_regularisation_folder_stay_clean_after_init(tmp_path, registry):
    files = {f"10_person_A/a{i}.png": f"person_A, portrait, look {i}, studio light" for i in range(6)}
    files.update({f"10_person_B/b{i}.png": f"person_B, portrait, side {i}, window light" for i in range(6)})
    files.update({f"1_woman/r{i}.png": f"a photo of a woman, scene {i}, daylight" for i in range(6)})
    make_sidecar_dataset(tmp_path / "ids", files)
    assert not _serious(_lint(tmp_path / "ids", registry, isolated=True))
    _init(tmp_path / "ids")
    assert not _serious(_lint(tmp_path / "ids", registry))


def test_init_keeps_a_concept_folders_wording_to_that_folder(tmp_path, registry):
    """Issue 24 #1: `"animal" = "red fox"` inferred in `8_wtrclr_fox/` is not pinned as the set's
    `[style] vague`, where every other folder's "animal" would become LK203 and an unsafe fix."""
    import shutil

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "examples" / "kohya-set", tmp_path / "set")
    (tmp_path / "set" / "10_person_A" / "extra.txt").write_text("person_A, portrait with an animal, studio light\n")
    shutil.copy(tmp_path / "set" / "10_person_A" / "a01.png", tmp_path / "set" / "10_person_A" / "extra.png")
    text = _init(tmp_path / "set")
    assert "vague" not in tomllib.loads(text)["style"]
    assert "concept folder `8_wtrclr_fox` that show a creature say `red fox`" in text
    found = [v for v in _lint(tmp_path / "set", registry) if v.code == "LK203"]
    assert not [v for v in found if v.image == "10_person_A/extra.png"]


@pytest.mark.parametrize("caption, token, variant, kind", [
    ("zlya, portrait, smiling", "zyla", "zlya", "typo"),  # issue 24 #7: two letters swapped
    ("wtcrlr, fox", "wtrclr", "wtcrlr", "typo"),  # a swap that keeps none of the token's letter triples
    ("zq-x, a cube", "zqx", "zq-x", "form"),  # issue 27: separators inside a short trigger
    ("zq x, a cube", "zqx", "zq x", "form"),
    ("zqxx, a cube", "zqx", "zqxx", "typo"),
])
def test_short_and_transposed_trigger_spellings_are_variants(caption, token, variant, kind):
    found = find_variant(caption, token)
    assert found is not None and (found.text, found.kind) == (variant, kind)


@pytest.mark.parametrize("caption, token", [("sky, clouds", "sks"), ("a photo of skis", "sks"),
                                            ("zebra, field", "zyla"), ("blue sky, clouds", "bluesky"),
                                            ("a red fox", "redfox")])
def test_common_words_are_never_short_trigger_typos(caption, token):
    assert find_variant(caption, token) is None


def test_a_transposed_trigger_is_fixed_in_place_not_inserted(tmp_path, registry):
    """Issue 24 #7: `zlya` for `zyla` was "trigger missing" and the unsafe fix wrote `zyla, zlya, ...`."""
    files = {f"{i}.png": f"zyla, portrait, look {i}, studio light" for i in range(8)}
    files["8.png"] = "zlya, portrait, smiling, studio light"
    make_sidecar_dataset(tmp_path / "z", files)
    found = [v.code for v in _lint(tmp_path / "z", registry, isolated=True) if v.image == "8.png"]
    assert found == ["LK307"]
    lora_core.fix(tmp_path / "z", registry=registry, unsafe=True, isolated=True, ignore=IMAGE_RULES)
    assert (tmp_path / "z" / "8.txt").read_text(encoding="utf-8").startswith("zyla, portrait, smiling")

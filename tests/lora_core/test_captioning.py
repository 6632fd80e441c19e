"""`lorakit caption` with the built-in csv captioner and in-memory captioners: post-processing,
voting, resume, safe chunked output, sidecars, and the final lint."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import lora_core
from lora_core import hookimpl
from lora_core.api import LintOptions, load_config
from lora_core.captioning import CaptionOptions, caption_folder, consensus, postprocess
from lora_core.cli import cli
from lora_core.plugins import load_plugins
from lora_core.testing import make_sidecar_dataset, registry_with, write_png

CONFIG = ('[style]\nrequired = ["cyberpunk"]\nprefix = "[style: cyberpunk]"\n'
          'vague = { machine = "steampunk gear device" }\n[entities]\ntrigger = "cybrpnk"\n')


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def captioner_plugin(name: str, make_caption, calls: list | None = None):
    class Captioner:
        def __init__(self, model=None, device="auto", dtype="auto"):
            self.model = model

        def caption(self, items, prompt=None):
            if calls is not None:
                calls.append([i.name for i in items])
            return [make_caption(i.name) for i in items]

    @hookimpl
    def register_captioners(register):
        register(name, Captioner)

    return types.SimpleNamespace(register_captioners=register_captioners)


def test_postprocess_makes_drafts_conform(tmp_path):
    (tmp_path / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    registry = load_plugins()
    config = load_config(tmp_path, LintOptions(), registry)
    assert postprocess(["neon city; rain", "a machine in the rain", "  cybr\u200bpnk,, alley "], config, registry) == [
        "[style: cyberpunk] cybrpnk, neon city, rain",
        "[style: cyberpunk] cybrpnk, a steampunk gear device in the rain",
        "[style: cyberpunk] cybrpnk, alley",
    ]


def test_consensus_keeps_the_candidate_closest_to_the_others():
    best, scores = consensus(["a neon city at night", "a city at night", "a photo of a dog"])
    assert best == 0 and scores == [5.0, 5.0, 2.0]  # a tie between the first two keeps the first
    assert consensus(["same", "same"])[0] == 0  # ties keep the first captioner


def test_csv_captioner_turns_sidecars_into_a_conforming_metadata_csv(tmp_path):
    folder = make_sidecar_dataset(tmp_path / "imgs", {"a.png": "neon city; rain", "sub/b.png": "machine, rain, fog"})
    write_png(folder / "c.png")
    (folder / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    result = CliRunner().invoke(cli, ["caption", str(folder), "--captioner", "csv"], catch_exceptions=False)
    assert result.exit_code == 1  # c.png had no caption: lint reports LK003
    assert "LK003 [error] caption is empty" in result.stdout
    # Captions people wrote get the safe fixes only (issue 24 #15): the separator, the style
    # prefix; never a rewording ("machine") nor an inserted trigger, which are the writer's call.
    assert [(r["file_name"], r["text"]) for r in rows(folder / "metadata.csv")] == [
        ("a.png", "[style: cyberpunk] neon city, rain"),
        ("c.png", ""),
        ("sub/b.png", "[style: cyberpunk] machine, rain, fog"),
    ]


def test_existing_output_needs_resume_or_overwrite_and_resume_skips(tmp_path):
    folder = make_sidecar_dataset(tmp_path / "imgs", {"a.png": "one two three", "b.png": "four five six"})
    calls: list = []
    registry = registry_with(captioner_plugin("fake", lambda n: f"caption of {n}", calls), names=["fake"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    (folder / "metadata.csv").write_text("file_name,text\na.png,kept caption here\n", encoding="utf-8")
    with pytest.raises(lora_core.DatasetError, match="pass --resume"):
        caption_folder(folder, CaptionOptions(["fake"]), config, registry)
    result = caption_folder(folder, CaptionOptions(["fake"], resume=True), config, registry)
    assert (result.written, result.skipped) == (1, 1) and calls == [["b.png"]]
    assert [(r["file_name"], r["text"]) for r in rows(folder / "metadata.csv")] == [
        ("a.png", "kept caption here"), ("b.png", "caption of b.png")]
    caption_folder(folder, CaptionOptions(["fake"], overwrite=True), config, registry)
    assert rows(folder / "metadata.csv")[0]["text"] == "caption of a.png"


def test_interrupt_keeps_every_finished_chunk(tmp_path):
    folder = tmp_path / "imgs"
    for i in range(150):
        write_png(folder / f"{i:03d}.png")

    def flaky(name: str) -> str:
        if name == "140.png":
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third chunk
        return f"caption {name}"

    registry = registry_with(captioner_plugin("flaky", flaky), names=["flaky"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    with pytest.raises(KeyboardInterrupt):
        caption_folder(folder, CaptionOptions(["flaky"], batch_size=4), config, registry)
    kept = rows(folder / "metadata.csv")  # a complete, parseable file: the first two chunks of 64
    assert len(kept) == 128 and kept[-1] == {"file_name": "127.png", "text": "caption 127.png"}
    assert not [p for p in folder.iterdir() if p.name.endswith(".lorakit-tmp")]


def test_voting_and_kept_candidates(tmp_path):
    folder = tmp_path / "imgs"
    write_png(folder / "a.png")
    plugins = [captioner_plugin("one", lambda n: "a neon city at night in the rain"),
               captioner_plugin("two", lambda n: "a neon city at night"),
               captioner_plugin("three", lambda n: "a dog on a sofa")]
    registry = registry_with(*plugins, names=["one", "two", "three"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    options = CaptionOptions(["three", "two", "one"], keep_candidates=True)
    result = caption_folder(folder, options, config, registry)
    assert result.chosen == {"a.png": "two"}
    (row,) = rows(folder / "metadata.csv")
    detail = json.loads(row["candidates"])
    assert row["text"] == "a neon city at night" and detail["chosen"] == "two" and detail["vote"] == "consensus"
    assert set(detail["candidates"]) == {"one", "two", "three"}
    assert detail["scores"] == {"one": 6.0, "two": 6.0, "three": 2.0}  # "two" wins the tie: listed first


def test_sidecar_output_and_unknown_captioner(tmp_path):
    folder = tmp_path / "imgs"
    write_png(folder / "neon_alley-rain_02.png")
    registry = registry_with(captioner_plugin("fake", lambda n: "neon alley, rain, night"), names=["fake"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    caption_folder(folder, CaptionOptions(["fake"], output="sidecars"), config, registry)
    assert (folder / "neon_alley-rain_02.txt").read_text() == "neon alley, rain, night\n"
    with pytest.raises(lora_core.DatasetError, match="already has a caption sidecar"):
        caption_folder(folder, CaptionOptions(["fake"], output="sidecars"), config, registry)
    resumed = caption_folder(folder, CaptionOptions(["fake"], output="sidecars", resume=True), config, registry)
    assert resumed.skipped == 1
    with pytest.raises(lora_core.PluginError, match="no captioner 'nope'"):
        caption_folder(folder, CaptionOptions(["nope"], output="sidecars"), config, registry)


def question_answerer(answers: dict[str, str], asked: list[str]):
    """A captioner that answers questions: the answer for the first key found in the prompt."""

    class Answerer:
        def __init__(self, model=None, device="auto", dtype="auto"):
            pass

        def caption(self, items, prompt=None):
            asked.append(prompt)
            answer = next((a for key, a in answers.items() if key in (prompt or "")), "no idea")
            return [answer for _ in items]

    @hookimpl
    def register_captioners(register):
        register("qa", Answerer, answers_questions=True)

    return types.SimpleNamespace(register_captioners=register_captioners)


def test_template_slots_are_filled_by_questions(tmp_path):
    folder = tmp_path / "imgs"
    write_png(folder / "a.png")
    (folder / "lorakit.toml").write_text(
        '[template]\npattern = "{style} {subject}, {lighting}"\n'
        'slots = { style = ["cyberpunk", "watercolor"] }\n'
        'questions = { lighting = "Question: how is it lit? Answer:" }\n', encoding="utf-8")
    asked: list[str] = []
    answers = {"style": "It is Cyberpunk.", "subject": "a neon alley.", "lit": "pink neon light"}
    registry = registry_with(question_answerer(answers, asked), names=["qa"])
    config = load_config(folder, LintOptions(), registry)
    caption_folder(folder, CaptionOptions(["qa"], template=True), config, registry)
    assert rows(folder / "metadata.csv")[0]["text"] == "cyberpunk a neon alley, pink neon light"
    assert asked == ["Question: which style does this picture show: cyberpunk or watercolor? Answer:",
                     "Question: what is the subject in this picture? Answer:",
                     "Question: how is it lit? Answer:"]
    result = lora_core.lint(folder / "metadata.csv", registry=registry, select=["LK4"])
    assert not list(result)  # the filled caption follows the template


def test_template_needs_a_pattern_and_a_question_answering_captioner(tmp_path):
    folder = tmp_path / "imgs"
    write_png(folder / "a.png")
    registry = registry_with(captioner_plugin("fake", lambda n: "x"), names=["fake"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    with pytest.raises(lora_core.ConfigError, match=r"--template needs `\[template\] pattern`"):
        caption_folder(folder, CaptionOptions(["fake"], template=True), config, registry)
    (folder / "lorakit.toml").write_text('[template]\npattern = "{style} {subject}"\n', encoding="utf-8")
    config = load_config(folder, LintOptions(), registry)
    with pytest.raises(lora_core.PluginError, match="--template needs a captioner that answers questions"):
        caption_folder(folder, CaptionOptions(["fake"], template=True), config, registry)


def test_captioner_options_reach_the_factory_and_typos_are_refused(tmp_path):
    from lora_core.captioning import parse_captioner_options

    assert parse_captioner_options(["coca.decoding=top-p", "num-beams=5", "top_p=0.9", "flag=true"]) == {
        "coca": {"decoding": "top-p"}, "*": {"num_beams": 5, "top_p": 0.9, "flag": True}}
    with pytest.raises(lora_core.PluginError, match="expected"):
        parse_captioner_options(["oops"])
    seen = {}

    class Tunable:
        def __init__(self, model=None, device="auto", dtype="auto", beams=1):
            seen["beams"] = beams

        def caption(self, items, prompt=None):
            return ["x" for _ in items]

    @hookimpl
    def register_captioners(register):
        register("tunable", Tunable)

    folder = tmp_path / "imgs"
    write_png(folder / "a.png")
    registry = registry_with(types.SimpleNamespace(register_captioners=register_captioners), names=["t"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    caption_folder(folder, CaptionOptions(["tunable"], captioner_options={"*": {"beams": 3}}), config, registry)
    assert seen == {"beams": 3}
    for bad, message in [({"tunable": {"beam": 3}}, "captioner tunable has no option 'beam' \\(options: beams\\)"),
                         ({"*": {"beam": 3}}, "none of the captioners \\(tunable\\) takes this option"),
                         ({"other": {"beams": 3}}, "'other' is not one of the captioners in use")]:
        with pytest.raises(lora_core.PluginError, match=message):
            caption_folder(folder, CaptionOptions(["tunable"], captioner_options=bad, overwrite=True), config,
                           registry)


def test_dataloader_workers_give_the_same_captions(tmp_path):
    """Captioners that split prepare/caption_prepared run prepare in DataLoader worker processes."""
    pytest.importorskip("torch")
    folder = tmp_path / "imgs"
    for i in range(12):
        write_png(folder / f"{i:02d}.png", 8 + i, 9)

    class Split:
        def __init__(self, model=None, device="auto", dtype="auto"):
            pass

        def prepare(self, item):
            import os

            from PIL import Image

            with Image.open(item.path) as image:
                return (image.size, os.getpid())

        def caption_prepared(self, prepared, prompt=None):
            return [f"{w} by {h}" for (w, h), _ in prepared]

        def caption(self, items, prompt=None):
            raise AssertionError("the prepared path is used")

    @hookimpl
    def register_captioners(register):
        register("split", Split)

    registry = registry_with(types.SimpleNamespace(register_captioners=register_captioners), names=["split"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    texts = []
    for workers in (0, 2):
        caption_folder(folder, CaptionOptions(["split"], batch_size=4, workers=workers, overwrite=True), config,
                       registry)
        texts.append([r["text"] for r in rows(folder / "metadata.csv")])
    assert texts[0] == texts[1] == [f"{8 + i} by 9" for i in range(12)]

    from lora_core.captioning import list_images, prepared_batches

    pids = {pid for _, batch in prepared_batches(Split(), list_images(folder), 4, 2) for _, pid in batch}
    assert pids and os.getpid() not in pids  # really prepared in worker processes


def test_accelerate_launch_shards_and_merges_in_order(tmp_path):
    """Two CPU processes under `accelerate launch`: each captions half, the first merges."""
    pytest.importorskip("accelerate")
    folder = make_sidecar_dataset(tmp_path / "imgs", {f"{i:02d}.png": f"caption number {i}" for i in range(9)})
    (folder / "metadata.csv").write_text("file_name,text\n03.png,kept by resume\n", encoding="utf-8")
    # torchrun is the launcher accelerate uses; `accelerate launch --cpu` starts one process without MPI
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    run = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "lora_core.cli", "caption", str(folder),
                          "--captioner", "csv", "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("All checks passed") == 1  # one process lints and reports
    assert [(r["file_name"], r["text"]) for r in rows(folder / "metadata.csv")] == [
        (f"{i:02d}.png", "kept by resume" if i == 3 else f"caption number {i}") for i in range(9)]
    assert not (folder / ".lorakit-caption-shards").exists()


def test_rules_opt_into_postprocessing_by_an_attribute():
    """A third-party rule with `postprocess_captions = True` shapes machine drafts like the
    built-in ones; without it, its fixes stay lint-only."""
    from lora_core import Fix, Rule, Severity

    def shouting(opt_in: bool) -> type:
        class NoShouting(Rule):
            """## What it does\nLower-cases captions written in capitals."""

            code = "TS901"
            name = "no-shouting"
            summary = "caption in capitals"
            severity = Severity.WARNING
            postprocess_captions = opt_in

            def check_record(self, record, ctx):
                text = record.caption or ""
                if text.isupper():
                    yield self.at_caption(record, "capitals", fix=Fix.replace("lower-case", 0, len(text),
                                                                               text.lower()))

        @hookimpl
        def register_rules(register):
            register(NoShouting)

        return types.SimpleNamespace(register_rules=register_rules)

    config_registry = registry_with(shouting(True), names=["shout"])
    config = load_config(Path("."), LintOptions(isolated=True), config_registry)
    assert postprocess(["A RED FOX"], config, config_registry) == ["a red fox"]
    lint_only = registry_with(shouting(False), names=["shout"])
    assert postprocess(["A RED FOX"], config, lint_only) == ["A RED FOX"]


def test_prompt_goes_only_to_captioners_that_take_one(tmp_path):
    write_png(tmp_path / "a.png")
    prompts: dict[str, list] = {"asks": [], "plain": []}

    def plugin(name: str, takes_prompt: bool):
        class Recording:
            def __init__(self, model=None, device="auto", dtype="auto"):
                pass

            def caption(self, items, prompt=None):
                prompts[name].append(prompt)
                return [f"{name} caption" for _ in items]

        @hookimpl
        def register_captioners(register):
            register(name, Recording, takes_prompt=takes_prompt)

        return types.SimpleNamespace(register_captioners=register_captioners)

    registry = registry_with(plugin("asks", True), plugin("plain", False), names=["asks", "plain"])
    config = load_config(tmp_path, LintOptions(isolated=True), registry)
    options = CaptionOptions(captioners=["asks", "plain"], prompt="a picture of")
    caption_folder(tmp_path, options, config, registry)
    assert prompts == {"asks": ["a picture of"], "plain": [None]}
    from lora_core.errors import PluginError

    with pytest.raises(PluginError, match="--prompt: none of the captioners \\(plain\\) takes a prompt"):
        caption_folder(tmp_path, CaptionOptions(captioners=["plain"], prompt="x", overwrite=True), config, registry)


def test_a_third_party_captioner_that_raises_is_named(tmp_path):
    """A plugin's bug is reported against the plugin (exit 2, one line), not as lorakit's own
    internal error; Ctrl-C still passes through (test_interrupt_keeps_every_finished_chunk)."""
    from lora_core.errors import PluginError

    write_png(tmp_path / "a.png")

    def broken(name: str) -> str:
        raise RuntimeError("CUDA out of memory")

    registry = registry_with(captioner_plugin("broken", broken), names=["acme-captioners"])
    config = load_config(tmp_path, LintOptions(isolated=True), registry)
    with pytest.raises(PluginError, match="captioner 'broken' of plugin 'acme-captioners' failed: "
                                          "RuntimeError: CUDA out of memory"):
        caption_folder(tmp_path, CaptionOptions(["broken"]), config, registry)

    class Unbuildable:
        def __init__(self, model=None, device="auto", dtype="auto"):
            raise ImportError("No module named 'acme_model'")

    @hookimpl
    def register_captioners(register):
        register("unbuildable", Unbuildable)

    registry = registry_with(types.SimpleNamespace(register_captioners=register_captioners), names=["acme"])
    with pytest.raises(PluginError, match="captioner 'unbuildable' of plugin 'acme' failed: ImportError"):
        caption_folder(tmp_path, CaptionOptions(["unbuildable"], overwrite=True), config, registry)

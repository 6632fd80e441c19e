"""`lorakit caption` with the built-in csv captioner and in-memory captioners: post-processing,
voting, resume, safe chunked output, sidecars, and the final lint."""

from __future__ import annotations

import csv
import io
import json
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
    assert [(r["file_name"], r["text"]) for r in rows(folder / "metadata.csv")] == [
        ("a.png", "[style: cyberpunk] cybrpnk, neon city, rain"),
        ("c.png", ""),
        ("sub/b.png", "[style: cyberpunk] cybrpnk, steampunk gear device, rain, fog"),
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

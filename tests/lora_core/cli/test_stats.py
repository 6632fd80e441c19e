"""`lorakit stats`: the numbers (JSON), the rich tables (rendered into a string), the PNG charts."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from lora_core.cli import cli
from lora_core.cli.stats import render_tables
from lora_core.testing import make_csv_dataset

ROWS = [("a.png", "[style: neon] cybrpnk, person_A, rain"), ("b.png", "cybrpnk, person_B, rain, fog"),
        ("c.png", "city at night with lights"), ("d.png", "")]
CONFIG = '[entities]\ntrigger = "cybrpnk"\nidentities = ["person_A", "person_B"]\n'


def dataset(tmp_path):
    folder = make_csv_dataset(tmp_path / "ds", ROWS).parent
    (folder / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    return folder


def test_json_numbers(tmp_path):
    folder = dataset(tmp_path)
    result = CliRunner().invoke(cli, ["stats", str(folder), "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["records"], data["captions"], data["empty_captions"]) == (4, 3, 1)
    assert data["tags"][0] == {"tag": "rain", "count": 2} and data["distinct_tags"] == 7
    assert data["trigger"] == {"token": "cybrpnk", "captions": 2, "coverage": 0.6667}
    assert data["identities"] == {"person_A": 1, "person_B": 1}
    assert data["length"]["unit"] == "clip-tokens" and data["length"]["max"] >= 6
    assert sum(data["length"]["histogram"]["counts"]) == 3
    assert data["images"]["count"] == 4 and data["images"]["sizes"] == [{"size": "512x512", "count": 4}]


def test_tables_render_captions_verbatim_and_plots_are_written(tmp_path):
    folder = dataset(tmp_path)
    result = CliRunner().invoke(cli, ["stats", str(folder), "--format", "json", "--plot", str(tmp_path / "plots")],
                                catch_exceptions=False)
    data = json.loads(result.stdout)
    assert sorted(p.rsplit("/", 1)[1] for p in data["plots"]) == ["aspect-ratio.png", "caption-length.png",
                                                                   "tags.png"]
    assert all((tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG") for name in ("tags.png",))
    buffer = io.StringIO()
    render_tables(data, Console(file=buffer, width=100, color_system=None))
    text = buffer.getvalue()
    assert "[style: neon] cybrpnk" in text  # brackets are text, not rich markup
    assert "trigger 'cybrpnk'" in text and "2 captions (67%)" in text
    assert "512x512" in text


def test_kohya_repeats_count_and_plot_says_what_it_wrote(tmp_path):
    """A kohya set: each folder's images x repeats, tags as one epoch shows them, a chart of the
    folders, and a line saying which charts were written where."""
    examples = Path(__file__).resolve().parents[3] / "examples" / "kohya-set"
    plots = tmp_path / "plots"
    result = CliRunner().invoke(cli, ["stats", str(examples), "--format", "json", "--no-images", "--plot", str(plots)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the note is on stderr: stdout stays one JSON document
    concepts = data["concepts"]
    assert concepts["samples_per_epoch"] == 10 * 8 + 6 * 10 + 3 * 3
    assert [(f["folder"], f["images"], f["repeats"], f["samples"]) for f in concepts["folders"]] == [
        ("8_wtrclr_fox", 10, 8, 80), ("10_person_A", 6, 10, 60), ("3_person_B", 3, 3, 9)]
    assert concepts["tags_per_epoch"][0]["count"] == 72  # `watercolor painting`: 9 captions x 8 repeats
    assert f"lorakit: wrote 3 chart(s) to {plots}: tags.png, concepts.png, caption-length.png" in result.stderr
    assert (plots / "concepts.png").read_bytes().startswith(b"\x89PNG")


def test_a_dataset_without_repeat_folders_has_no_concepts(tmp_path):
    result = CliRunner().invoke(cli, ["stats", str(dataset(tmp_path)), "--format", "json"], catch_exceptions=False)
    assert json.loads(result.stdout)["concepts"] is None


def test_uncaptioned_images_count_and_tags_keep_their_case(tmp_path):
    """Issue 24 #11: an image with no caption still trains (kohya: on its folder's class) and is
    counted; `Cybrpnk` and `cybrpnk` are two tags, as they are to lint and to the text encoder."""
    from lora_core.testing import make_sidecar_dataset, write_photo

    folder = tmp_path / "set"
    make_sidecar_dataset(folder, {"10_x/a.png": "cybrpnk, rain", "10_x/b.png": "Cybrpnk, rain"})
    write_photo(folder / "10_x" / "c.png", size=64)  # no caption file
    result = CliRunner().invoke(cli, ["stats", str(folder), "--format", "json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert data["images"]["count"] == 3 and data["images"]["uncaptioned"] == 1
    assert {"tag": "cybrpnk", "count": 1} in data["tags"] and {"tag": "Cybrpnk", "count": 1} in data["tags"]
    shown = CliRunner().invoke(cli, ["stats", str(folder)], catch_exceptions=False).output
    assert "3 (1 without a caption, 0 unreadable)" in shown


def test_fixable_and_fixed_counts_agree_with_a_byte_order_mark(tmp_path):
    """Issue 24 #11: "2 fixable" then "Fixed 1 problem": the byte-order-mark fix was not counted."""
    from lora_core.testing import make_sidecar_dataset

    folder = tmp_path / "bom"
    make_sidecar_dataset(folder, {"a.png": "cybrpnk,  rain, fog", "b.png": "cybrpnk, neon, fog"})
    (folder / "b.txt").write_bytes(b"\xef\xbb\xbfcybrpnk, neon, fog")
    linted = CliRunner().invoke(cli, ["lint", str(folder), "--isolated", "--format", "concise"])
    assert "[*] 2 fixable with `--fix`." in linted.output
    diffed = CliRunner().invoke(cli, ["lint", str(folder), "--isolated", "--diff"])
    assert "Would fix 2 problems in 2 files." in diffed.stderr
    fixed = CliRunner().invoke(cli, ["lint", str(folder), "--isolated", "--fix", "--format", "concise"])
    assert "Fixed 2 problems in 2 files." in fixed.output
    assert (folder / "b.txt").read_bytes() == b"cybrpnk, neon, fog"

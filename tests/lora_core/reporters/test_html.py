"""The HTML report: self-contained, one card per image with the caption's problems marked, and,
in a real headless Chromium (skipped where none is installed; .ci/run installs it), the page's
own script builds the filters, applies them from the URL, and the chart is there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from lora_core.cli import cli
from lora_core.testing import make_csv_dataset

ROWS = [("a.png", "cybrpnk,  neon city, person_A"), ("b.png", "city at night with lights"),
        ("c.png", "cybrpnk, rain, fog"), ("d.png", "cybrpnk, <b>bold</b> & rain")]
CONFIG = '[entities]\ntrigger = "cybrpnk"\nidentities = ["person_A"]\n'


@pytest.fixture
def report(tmp_path) -> Path:
    folder = make_csv_dataset(tmp_path / "ds", ROWS).parent
    (folder / "lorakit.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "c.png").write_bytes((folder / "a.png").read_bytes())  # a duplicate image: LK605
    (folder / "e.png").write_bytes((folder / "b.png").read_bytes())  # no row in metadata.csv: LK002
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["lint", str(folder), "--format", "html", "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output  # LK305 trigger-missing is an error
    return out


def test_the_page_is_self_contained_with_a_card_per_image(report):
    page = report.read_text(encoding="utf-8")
    assert page.count('<article class="card"') == 5  # the uncaptioned e.png has its card
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert page.count('src="data:image/jpeg;base64,') == 5  # thumbnails embedded
    assert '<h3>e.png</h3><p class="caption"><span class="nocaption">no caption</span>' in page
    assert "<b>LK002</b> image <code>e.png</code> has no caption" in page  # code spans, not backticks
    assert "`" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert '<mark title="LK101">' in page  # the double space is highlighted in the caption
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; rain" in page  # captions are escaped, never markup
    assert 'id="tag-chart"' in page and page.count('class="bar"') >= 5
    assert '<option value="LK605">LK605</option>' in page and '<option value="person_A">' in page


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def dump_dom(page: Path, fragment: str = "") -> str:
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    run = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--virtual-time-budget=3000", "--dump-dom", page.as_uri() + fragment],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_chromium_runs_the_page_script_and_its_filters(report):
    dom = dump_dom(report)
    assert 'data-ready="1"' in dom and 'data-shown="5"' in dom
    assert "5 of 5 shown" in dom
    filtered = dump_dom(report, "#rule=LK605")
    shown = re.search(r'data-shown="(\d+)"', filtered)
    assert shown and shown.group(1) == "1"  # only the duplicate carries LK605
    assert len(re.findall(r'class="card hidden"', filtered)) == 4
    uncaptioned = dump_dom(report, "#rule=LK002")
    assert re.search(r'data-shown="1"', uncaptioned)  # the uncaptioned image's card filters like any other
    by_identity = dump_dom(report, "#identity=person_A")
    assert re.search(r'data-shown="1"', by_identity)
    assert "<svg" in dom and 'id="tag-chart"' in dom


def test_findings_about_the_whole_dataset_have_their_own_place(tmp_path):
    """Issue 24 #3: LK204 coverage (and LK304 balance, a config's LK502) belongs to no image; the
    page lists it above the cards, and the rule filter shows it instead of "0 of N"."""
    folder = make_csv_dataset(tmp_path / "ds", ROWS).parent
    (folder / "lorakit.toml").write_text(CONFIG + '[style]\nrequired = ["cyberpunk"]\n', encoding="utf-8")
    out = tmp_path / "report.html"
    CliRunner().invoke(cli, ["lint", str(folder), "--format", "html", "-o", str(out)], catch_exceptions=False)
    page = out.read_text(encoding="utf-8")
    section = re.search(r'<section id="dataset-findings">(.*?)</section>', page, flags=re.S)
    assert section and '<li class="finding error" data-rule="LK204"' in section.group(1)
    assert "About the whole dataset (2)" in section.group(1)
    filtered = dump_dom(out, "#rule=LK204")
    assert "0 of 4 shown, 1 of 2 about the whole dataset" in filtered
    assert "4 of 4 shown, 0 of 2 about the whole dataset" in dump_dom(out, "#rule=LK201")

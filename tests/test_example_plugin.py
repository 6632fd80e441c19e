"""The example rule pack in examples/ installs with pip and works like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.testing import make_csv_dataset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """pip-install examples/lorakit-example-rules into a separate folder (not the test venv)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO / "examples" / "lorakit-example-rules")],
        check=True, capture_output=True,
    )
    return target


def lorakit(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "lora_core.cli", *args], capture_output=True, text=True, env=env)


def test_installed_pack_appears_and_fires(plugin_site, tmp_path):
    plugins = {p["name"]: p for p in json.loads(lorakit(plugin_site, "plugins", "--format", "json").stdout)}
    assert plugins["example-rules"]["distribution"] == "lorakit-example-rules"
    assert plugins["example-rules"]["registers"] == {"rules": ["EX101"]}
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, neon city, watermark"), ("b.png", "cybrpnk, rain, night")])
    result = lorakit(plugin_site, "lint", str(path), "--isolated", "--format", "json")
    assert result.returncode == 0, result.stderr
    (item,) = json.loads(result.stdout)
    assert (item["code"], item["image"], item["plugin"], item["column"]) == ("EX101", "a.png", "example-rules", 28)
    fixed = lorakit(plugin_site, "lint", str(path), "--isolated", "--fix", "--unsafe-fixes")
    assert fixed.returncode == 0 and '"cybrpnk, neon city"' in path.read_text()
    assert "EX101 artifact-tag" in lorakit(plugin_site, "rule", "EX101").stdout


def test_pack_can_be_disabled_and_required(plugin_site, tmp_path):
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, watermark")])
    assert lorakit(plugin_site, "lint", str(path), "--isolated", "-p", "no:example-rules").returncode == 0
    required = lorakit(plugin_site, "lint", str(path), "--isolated", "-p", "no:example-rules",
                       "--require-plugin", "example-rules")
    assert required.returncode == 2 and "required plugin 'example-rules' is disabled" in required.stderr


def test_broken_plugin_is_shown_and_the_rest_works(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken_pack-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pack\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lorakit]\nbroken = broken_pack\n")
    (site / "broken_pack.py").write_text("raise ImportError('needs torch')\n")
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "")])
    result = lorakit(site, "lint", str(path), "--isolated", "--format", "concise")
    assert result.returncode == 1 and "LK003" in result.stdout
    assert "plugin 'broken' failed to load: ImportError: needs torch" in result.stderr
    required = lorakit(site, "lint", str(path), "--isolated", "--require-plugin", "broken")
    assert required.returncode == 2 and "required plugin 'broken' is failed" in required.stderr


def test_example_captioner_installs_and_captions(tmp_path_factory, tmp_path):
    site = tmp_path_factory.mktemp("captioner-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(REPO / "examples" / "lorakit-filename-captioner")],
        check=True, capture_output=True,
    )
    plugins = {p["name"]: p for p in json.loads(lorakit(site, "plugins", "--format", "json").stdout)}
    assert plugins["filename-captioner"]["registers"] == {"captioners": ["filename"]}
    folder = tmp_path / "imgs"
    from lora_core.testing import write_png

    write_png(folder / "neon_alley-rain-night_02.png")
    write_png(folder / "cyborg_portrait-studio_light-01.png")
    result = lorakit(site, "caption", str(folder), "--captioner", "filename")
    assert result.returncode == 0, result.stdout + result.stderr
    text = (folder / "metadata.csv").read_text(encoding="utf-8")
    assert 'neon_alley-rain-night_02.png,"neon alley, rain, night"' in text
    assert 'cyborg_portrait-studio_light-01.png,"cyborg portrait, studio light"' in text

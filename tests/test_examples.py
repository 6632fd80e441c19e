"""The README's walk-through on the example dataset: fails, --fix repairs the text, the edits
a human makes finish it, and it passes."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import lora_core

REPO = Path(__file__).resolve().parent.parent


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CACHE = ".lorakit_cache"  # what linting the example creates beside it (ignored by git)


def test_committed_example_is_what_the_script_generates(tmp_path):
    load("make_example_dataset").generate(tmp_path / "fresh")
    committed = [p for p in (REPO / "examples" / "cyberpunk").iterdir() if p.name != CACHE]
    assert sorted(p.name for p in committed) == sorted(p.name for p in (tmp_path / "fresh").iterdir())
    for path in committed:
        assert path.read_bytes() == (tmp_path / "fresh" / path.name).read_bytes(), path.name


def test_example_fails_then_passes_after_fixes_and_manual_edits(tmp_path, registry):
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "examples" / "cyberpunk", folder, ignore=shutil.ignore_patterns(CACHE))
    before = lora_core.lint(folder, registry=registry)
    codes = {v.code for v in before}
    assert {"LK201", "LK204", "LK107", "LK105", "LK301", "LK305", "LK001", "LK002"} <= codes
    assert before.exit_code() == 1
    fixed = lora_core.fix(folder, registry=registry, unsafe=True)
    assert {"LK201", "LK105", "LK203", "LK305"} <= set(fixed.by_code)
    assert fixed.remaining.exit_code() == 1
    load("finish_by_hand").finish(folder)
    after = lora_core.lint(folder, registry=registry)
    assert after.exit_code() == 0, [f"{v.code} {v.image} {v.message}" for v in after]
    assert {v.severity.value for v in after} <= {"info"}


def test_committed_kohya_example_is_what_the_script_generates(tmp_path):
    load("make_kohya_example").generate(tmp_path / "fresh")
    base = REPO / "examples" / "kohya-set"
    committed = sorted(p.relative_to(base) for p in base.rglob("*") if p.is_file() and CACHE not in p.parts)
    assert committed == sorted(p.relative_to(tmp_path / "fresh") for p in (tmp_path / "fresh").rglob("*")
                               if p.is_file())
    for rel in committed:
        assert (base / rel).read_bytes() == (tmp_path / "fresh" / rel).read_bytes(), rel


def test_kohya_example_zero_config_finds_each_planted_failure(tmp_path, registry):
    """The README's zero-config walk-through: no lorakit.toml, every failure found from the set's
    own conventions, and nothing else."""
    folder = tmp_path / "kohya-set"
    shutil.copytree(REPO / "examples" / "kohya-set", folder, ignore=shutil.ignore_patterns(CACHE))
    result = lora_core.lint(folder, registry=registry)
    found = sorted(((v.image or ""), v.code) for v in result)
    assert found == [
        ("", "LK304"),
        ("10_person_A/a03.png", "LK301"),
        ("3_person_B/b02.png", "LK308"),
        ("8_wtrclr_fox/f04.png", "LK307"),
        ("8_wtrclr_fox/f05.png", "LK201"),
        ("8_wtrclr_fox/f05.png", "LK205"),
        ("8_wtrclr_fox/f06.png", "LK305"),
        ("8_wtrclr_fox/f07.png", "LK201"),
        ("8_wtrclr_fox/f07.png", "LK203"),
    ]
    assert result.exit_code() == 1
    assert not [v for v in lora_core.lint(folder, registry=registry, infer=False)]  # nothing without inference

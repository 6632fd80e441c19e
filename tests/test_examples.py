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

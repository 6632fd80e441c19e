"""Shared fixtures: a registry of lorakit's own plugins, and helpers to lint small datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import lora_core
from lora_core.plugins import Registry, load_plugins
from lora_core.testing import make_csv_dataset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def registry() -> Registry:
    """lorakit's built-in plugins only, whatever else is installed in the environment."""
    registry = load_plugins(builtin_only=True)
    assert not registry.failed, [(p.name, p.error) for p in registry.failed]
    return registry


@pytest.fixture
def lint_rows(tmp_path: Path, registry: Registry):
    """Lint a metadata.csv made of `rows` and return the violations (optionally only `codes`)."""

    def run(rows: Sequence[Sequence[str]], codes: Sequence[str] | None = None, **options):
        path = make_csv_dataset(tmp_path / "ds", rows)
        options.setdefault("select", ["LK0", "LK1"])  # the caption-content packs have their own tests
        result = lora_core.lint(path, registry=registry, isolated=True, **options)
        assert not result.crashes, [c.describe() for c in result.crashes]
        return [v for v in result if codes is None or v.code in codes]

    return run

"""Shared fixtures: a registry of lorakit's own plugins, and helpers to lint small datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import lora_core
from lora_core.plugins import Registry, load_plugins
from lora_core.testing import make_csv_dataset

REPO = Path(__file__).resolve().parent.parent

try:  # tqdm (transformers' loading bars) starts a monitor thread that would outlive its test, and
    import tqdm  # lorakit's engine rightly refuses to fork a process that runs other threads

    tqdm.tqdm.monitor_interval = 0
except ImportError:
    pass


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


@pytest.fixture
def lint_with_config(tmp_path: Path, registry: Registry):
    """Lint `rows` under a lorakit.toml holding `config`; returns (result, metadata path)."""

    def run(rows: Sequence[Sequence[str]], config: str, select: Sequence[str] = ("ALL",), fix: bool = False,
            unsafe: bool = False):
        folder = tmp_path / "ds"
        path = make_csv_dataset(folder, rows)
        (folder / "lorakit.toml").write_text(config, encoding="utf-8")
        if fix:
            lora_core.fix(path, registry=registry, unsafe=unsafe, select=list(select))
        result = lora_core.lint(path, registry=registry, select=list(select))
        assert not result.crashes, [c.describe() for c in result.crashes]
        return result, path

    return run


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A tiny random CLIP (transformers) with the real tokenizer, saved like a checkpoint."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from lora_core.testing.tiny_models import tiny_clip

    torch.set_num_threads(1)
    return tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def captions_of(result) -> list[str]:
    return [r.caption for r in result.datasets[0].dataset.records]


def pytest_collection_modifyitems(config, items):
    """`cuda` tests are skipped, with the reason shown, where torch sees no CUDA device."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    try:
        import torch

        available = torch.cuda.is_available()
    except ImportError:
        available = False
    if not available:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in cuda_items:
            item.add_marker(skip)


def load_test_module(name: str):
    """A helper module of tests/ by path (tests/ is not a package: tests/lora_core would shadow
    lora_core)."""
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def real_truth(tmp_path_factory) -> dict[str, Path]:
    """The labelled real pictures of tests/real_images.py (built once per test session)."""
    real_images = load_test_module("real_images")
    if real_images.skimage_data() is None:
        pytest.skip("scikit-image (its bundled pictures) is not installed")
    return real_images.build(tmp_path_factory.mktemp("real-images"))

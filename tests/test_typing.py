"""The public API type-checks strictly: mypy --strict over what plugin authors import (the files
listed under [tool.mypy] in pyproject.toml, the example plugins included)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytest.importorskip("mypy", reason="mypy is a dev dependency")


@pytest.mark.slow
def test_public_api_passes_mypy_strict():
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success" in run.stdout


@pytest.mark.slow
def test_the_whole_package_type_checks():
    """lora_core ships py.typed: every module's annotations must hold (mypy's default checks)."""
    run = subprocess.run([sys.executable, "-m", "mypy", "lora_core", "--config-file", "", "--ignore-missing-imports",
                          "--cache-dir", "build/mypy-cache-package"], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr

"""The real pre-commit runs our hook (`pre-commit try-repo` on this working tree)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_core.testing import make_csv_dataset

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def try_repo(cwd: Path, hook: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), hook, "--all-files", "--color", "never"],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=600,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_hook_fails_on_a_broken_dataset_then_passes_after_fix(tmp_path):
    project = tmp_path / "project"
    data = project / "data"
    make_csv_dataset(data, [("a.png", " cybrpnk, rain"), ("b.png", "cybr\u200bpnk, neon city"),
                            ("c.png", "cybrpnk, alley")])
    (data / "notes.txt").write_text("not a caption: there is no notes.png\n", encoding="utf-8")
    # This team's config makes whitespace and invisible characters errors: they block commits.
    (project / "lorakit.toml").write_text('[lint]\nseverity = { LK101 = "error", LK105 = "error" }\n',
                                          encoding="utf-8")
    git(project, "init", "-q")
    git(project, "add", "-A")
    home = tmp_path / "pre-commit-home"

    failing = try_repo(project, "lorakit-lint", home)
    output = failing.stdout + failing.stderr
    assert failing.returncode == 1, output
    assert "lorakit lint" in output and "Failed" in output
    assert "data/metadata.csv:2:8: LK101 [error] caption starts with whitespace" in output
    assert "data/metadata.csv:3:12: LK105 [error] invisible character U+200B" in output

    fixing = try_repo(project, "lorakit-fix", home)
    assert fixing.returncode == 1, fixing.stdout  # pre-commit fails a hook that modified files
    assert "files were modified by this hook" in fixing.stdout
    assert (data / "metadata.csv").read_text(encoding="utf-8").splitlines()[1:3] == [
        'a.png,"cybrpnk, rain"', 'b.png,"cybrpnk, neon city"']
    git(project, "add", "-A")

    passing = try_repo(project, "lorakit-lint", home)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "Passed" in passing.stdout


def test_images_and_the_config_stand_for_their_dataset(tmp_path, registry):
    """What the hook's `files:` pattern now passes: a changed picture or lorakit.toml re-lints its
    dataset; a picture outside any dataset (docs/, assets/) and a config above the datasets are
    skipped, never linted as uncaptioned images."""
    from lora_core.api import dataset_targets

    data = make_csv_dataset(tmp_path / "data", [("a.png", "cybrpnk, rain")]).parent
    (tmp_path / "data" / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    kohya = tmp_path / "kohya" / "10_fox"
    kohya.mkdir(parents=True)
    (kohya / "f1.png").write_bytes((data / "a.png").read_bytes())
    (kohya / "f1.txt").write_text("wtrclr, fox", encoding="utf-8")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "screenshot.png").write_bytes((data / "a.png").read_bytes())
    (tmp_path / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    targets, skipped = dataset_targets([data / "a.png", data / "lorakit.toml", kohya / "f1.png",
                                        docs / "screenshot.png", tmp_path / "lorakit.toml"], registry.readers)
    assert [t.resolve() for t in targets] == [data.resolve(), (tmp_path / "kohya").resolve()]
    assert skipped == [docs / "screenshot.png", tmp_path / "lorakit.toml"]


def test_the_hook_pattern_matches_configs_and_images():
    import re

    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    for hook in hooks:
        pattern = re.compile(hook["files"])
        for name in ("data/metadata.csv", "data/lorakit.toml", "ds/img.PNG", "ds/a.jpeg", "ds/a.txt", "a.webp"):
            assert pattern.search(name), (hook["id"], name)
        for name in ("README.md", "pyproject.toml", "ds/notes.md"):
            assert not pattern.search(name), (hook["id"], name)


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_the_example_config_runs_as_written_and_re_lints_on_an_image_or_config_change(tmp_path):
    """Issue 24 #5: examples/.pre-commit-config.yaml works as copied (no `rev:` naming a tag that
    does not exist), and its `files:` passes images and lorakit.toml, which the README says re-lint."""
    import re

    import yaml

    example = (REPO / "examples" / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    tags = subprocess.run(["git", "tag"], cwd=REPO, capture_output=True, text=True).stdout.split()
    for rev in re.findall(r"^\s*rev:\s*(\S+)", example, flags=re.M):
        assert rev in tags, f"the example pins rev {rev}, which is no tag of this repository"
    hook = yaml.safe_load(example)["repos"][0]["hooks"][0]
    pattern = re.compile(hook["files"])
    for name in ("datasets/cats/metadata.csv", "datasets/cats/lorakit.toml", "datasets/cats/a.PNG",
                 "datasets/10_cat/a.txt", "datasets/cats/b.jpeg"):
        assert pattern.search(name), name
    assert not pattern.search("docs/notes.txt")

    project = tmp_path / "project"
    data = make_csv_dataset(project / "datasets" / "cats", [("a.png", "cybrpnk,  rain")]).parent
    (data / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    (project / ".pre-commit-config.yaml").write_text(example, encoding="utf-8")
    git(project, "init", "-q")
    git(project, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "home"), "NO_COLOR": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("GITHUB_ACTIONS", None)

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        names = [str(f.relative_to(project)) for f in files]
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--color", "never", "--files", *names],
                              cwd=project, capture_output=True, text=True, env=env, timeout=600)

    changed_image = run(data / "a.png")  # only the picture changed: its dataset is fixed all the same
    assert changed_image.returncode == 1 and "files were modified by this hook" in changed_image.stdout
    assert (data / "metadata.csv").read_text(encoding="utf-8").splitlines()[1] == 'a.png,"cybrpnk, rain"'
    git(project, "add", "-A")
    changed_config = run(data / "lorakit.toml")
    assert changed_config.returncode == 0 and "Passed" in changed_config.stdout, changed_config.stdout

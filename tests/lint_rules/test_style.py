"""LK2xx style rules: firing, clean and fix cases on realistic tag lists and sentences."""

from __future__ import annotations

from conftest import captions_of

STYLE = """
[style]
required = ["cyberpunk"]
vague = { "machine" = "steampunk gear device", "landscape painting" = "ink-wash landscape" }
conflicting = ["photorealistic", "photo"]
min-coverage = 0.9
"""


def codes(result, prefix="LK2"):
    return [(v.code, v.image) for v in result if v.code.startswith(prefix)]


def test_style_term_missing_the_cyberpunk_case(lint_with_config):
    rows = [("a.png", "cyberpunk city, glowing neon, cybernetic enhancements, rain"),
            ("b.png", "city at night with lights"),
            ("c.png", "A Cyberpunk street market at night, neon signs"),
            ("d.png", "cyber punk alley, neon, rain")]
    result, _ = lint_with_config(rows, STYLE, select=["LK201"])
    assert codes(result) == [("LK201", "b.png"), ("LK201", "d.png")]
    assert "none of the style terms `cyberpunk`" in result[0].message


def test_style_term_missing_explains_invisible_and_nbsp(lint_with_config):
    rows = [("a.png", "cyber\u200bpunk city, neon, rain"), ("b.png", "neon cyber\u00a0punk alley, rain, night")]
    result, _ = lint_with_config(rows, '[style]\nrequired = ["cyberpunk", "cyber punk"]\n', select=["LK201"])
    messages = [v.message for v in result]
    assert "invisible character (U+200B zero width space)" in messages[0]
    assert "non-standard space (U+00A0 no-break space)" in messages[1]


def test_style_term_missing_fix_adds_the_prefix(lint_with_config):
    config = '[style]\nrequired = ["cyberpunk"]\nprefix = "[style: cyberpunk]"\n'
    rows = [("a.png", "city at night with lights"), ("b.png", "[style: cyberpunk] neon alley, rain, night")]
    result, _ = lint_with_config(rows, config, select=["LK201", "LK202"], fix=True)
    assert captions_of(result) == ["[style: cyberpunk] city at night with lights",
                                   "[style: cyberpunk] neon alley, rain, night"]
    assert list(result) == []


def test_prefix_inconsistent_configured(lint_with_config):
    config = '[style]\nprefix = "[style: watercolor]"\n'
    rows = [("a.png", "[style: watercolor] a fox in the snow"), ("b.png", "a fox by a river at dusk"),
            ("c.png", "[style: water colour] a fox at dusk")]
    result, _ = lint_with_config(rows, config, select=["LK202"], fix=True)
    assert captions_of(result) == ["[style: watercolor] a fox in the snow",
                                   "[style: watercolor] a fox by a river at dusk",
                                   "[style: watercolor] a fox at dusk"]


def test_prefix_inconsistent_detected_without_config(lint_with_config):
    rows = [("a.png", "[style: watercolor] a fox in the snow"), ("b.png", "[style: watercolor] a fox by a river"),
            ("c.png", "a fox at dusk in the woods"), ("d.png", "[style: watercolour] a fox at night")]
    result, _ = lint_with_config(rows, "", select=["LK202"])
    assert [v.image for v in result] == ["c.png", "d.png"]
    assert "2 of 4 captions start with `[style: watercolor]`" in result[0].message
    clean, _ = lint_with_config(rows[:2], "", select=["LK202"])
    assert list(clean) == []


def test_vague_term_names_the_replacement_and_fixes_unsafely(lint_with_config):
    rows = [("a.png", "cybrpnk, machine, steam, brass gears"), ("b.png", "a quiet landscape painting of hills")]
    result, _ = lint_with_config(rows, STYLE, select=["LK203"])
    assert [v.message for v in result] == ["vague term `machine`: say `steampunk gear device`",
                                           "vague term `landscape painting`: say `ink-wash landscape`"]
    safe, _ = lint_with_config(rows, STYLE, select=["LK203"], fix=True)
    assert captions_of(safe)[0] == "cybrpnk, machine, steam, brass gears"  # unsafe: not applied by --fix
    fixed, _ = lint_with_config(rows, STYLE, select=["LK203"], fix=True, unsafe=True)
    assert captions_of(fixed) == ["cybrpnk, steampunk gear device, steam, brass gears",
                                  "a quiet ink-wash landscape of hills"]
    assert "machinery" not in [v.message for v in lint_with_config([("a.png", "machinery hall, pipes, steam")],
                                                                    STYLE, select=["LK203"])[0]]


def test_style_coverage(lint_with_config):
    rows = [(f"{i}.png", "cyberpunk alley, neon, rain") for i in range(8)] + [
        ("x.png", "city at night with lights"), ("y.png", "a street at night, lamps")]
    (violation,) = lint_with_config(rows, STYLE, select=["LK204"])[0]
    assert "80% of captions (8/10)" in violation.message and "at least 90%" in violation.message
    assert "`x.png`, `y.png`" in violation.message and violation.data["share"] == 0.8
    assert list(lint_with_config(rows[:8], STYLE, select=["LK204"])[0]) == []


def test_conflicting_style_term(lint_with_config):
    rows = [("a.png", "cyberpunk, photorealistic street, neon"), ("b.png", "cyberpunk, photographer, neon, rain")]
    result, _ = lint_with_config(rows, STYLE, select=["LK205"])
    assert [(v.image, v.message) for v in result] == [("a.png", "`photorealistic` contradicts the style")]


def test_conflicting_style_tag_is_removed_by_the_unsafe_fix_only(lint_with_config):
    """A conflicting term that is a tag of its own goes with --unsafe-fixes (the bench/outcome
    experiment's drifting captioner: `zqx, flat style, ...`); one inside a phrase or sentence stays."""
    config = '[style]\nconflicting = ["flat", "photorealistic"]\n'
    rows = [("a.png", "zqx, flat style, a red circle on a white background"),
            ("b.png", "photorealistic, zqx, a blue square"),
            ("c.png", "zqx, a flat red circle on a white background"),
            ("d.png", "zqx, a red circle on a flat art style background, photorealistic art style")]
    safe, _ = lint_with_config(rows, config, select=["LK205"], fix=True)
    assert captions_of(safe)[0] == rows[0][1]  # an unsafe fix: --fix alone changes nothing
    fixed, _ = lint_with_config(rows, config, select=["LK205"], fix=True, unsafe=True)
    assert captions_of(fixed) == ["zqx, a red circle on a white background", "zqx, a blue square",
                                  "zqx, a flat red circle on a white background",
                                  "zqx, a red circle on a flat art style background"]
    # "a flat red circle": the word describes the thing, not the picture (never reported)
    assert [v.image for v in fixed] == ["d.png"] and all(v.fix is None for v in fixed)


def test_caption_too_short(lint_with_config):
    rows = [("a.png", "cybrpnk, city"), ("b.png", "portrait"), ("c.png", "cyberpunk street, neon, rain"),
            ("d.png", "a neon street at night")]
    result, _ = lint_with_config(rows, "", select=["LK206"])
    assert [(v.image, v.message) for v in result] == [
        ("a.png", "caption has 2 tags; at least 3 describe an image"),
        ("b.png", "caption has 1 word; at least 3 describe an image")]
    assert list(lint_with_config(rows, "[style]\nmin-words = 1\n", select=["LK206"])[0]) == []


def test_vague_fixes_settle_inside_their_replacement_and_the_prefix(lint_with_config):
    """`car` -> `red sports car` holds `car`; a vague word inside the `[style: ...]` prefix is the
    set's label: neither loops (issue 14: "a red sports red sports red sports ...")."""
    config = ('[style]\nprefix = "[style: machine art]"\n'
              'vague = { "car" = "red sports car", "machine" = "gear device" }\n')
    rows = [("a.png", "[style: machine art] cybrpnk, car, machine, rain")]
    result, path = lint_with_config(rows, config, select=["LK2"], fix=True, unsafe=True)
    assert "[style: machine art] cybrpnk, red sports car, gear device, rain" in path.read_text(encoding="utf-8")
    assert [v.code for v in result] == []

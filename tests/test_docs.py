"""docs/rules.md and docs/configuration.md are generated from code and must not be stale."""

from __future__ import annotations

from lora_core import docgen
from lora_core.plugins import load_plugins


def test_generated_docs_are_current():
    for path, text in docgen.generated().items():
        assert path.exists(), f"{path} missing: run `python -m lora_core.docgen`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `python -m lora_core.docgen`"


def test_every_builtin_rule_documents_what_why_example_fix():
    registry = load_plugins(builtin_only=True)
    for rule in registry.rules.values():
        doc = rule.explanation()
        for section in ("## What it does", "## Why it matters", "## Example", "## Fix", "## Options"):
            assert section in doc, f"{rule.code} lacks {section}"
        assert rule.summary and not rule.summary.endswith(".")


def _python_blocks(text: str) -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_plugin_guide_examples_run_as_written(tmp_path, monkeypatch):
    """docs/plugins.md: the rule pack runs as the module its test imports, and the test passes;
    the captioner example captions a folder through `lorakit caption`'s own pipeline."""
    import sys
    import types

    from tests.conftest import REPO

    blocks = _python_blocks((REPO / "docs" / "plugins.md").read_text(encoding="utf-8"))
    rule_pack = next(b for b in blocks if "class NoWatermark" in b)
    test_code = next(b for b in blocks if "def test_no_watermark" in b)
    captioner = next(b for b in blocks if "class MyCaptioner" in b)

    module = types.ModuleType("acme_lorakit_rules")
    exec(compile(rule_pack, "docs/plugins.md (rule pack)", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "acme_lorakit_rules", module)
    namespace: dict = {}
    exec(compile(test_code, "docs/plugins.md (test)", "exec"), namespace)
    namespace["test_no_watermark"](tmp_path / "rules")

    from lora_core.api import LintOptions, load_config
    from lora_core.captioning import CaptionOptions, caption_folder
    from lora_core.testing import registry_with, write_png

    plugin = types.ModuleType("acme_captioner")
    exec(compile(captioner, "docs/plugins.md (captioner)", "exec"), plugin.__dict__)
    folder = tmp_path / "images"
    write_png(folder / "red_fox.png")
    registry = registry_with(plugin, names=["acme-captioner"])
    config = load_config(folder, LintOptions(isolated=True), registry)
    result = caption_folder(folder, CaptionOptions(captioners=["mine"]), config, registry)
    assert result.written == 1
    assert (folder / "metadata.csv").read_text(encoding="utf-8") == "file_name,text\nred_fox.png,a photo of red_fox\n"


def test_toolkit_names_are_documented_and_examples_hold():
    import doctest
    import importlib
    import inspect

    from lora_core import toolkit

    for name in (*[f"lora_core.toolkit.{m}" for m in toolkit.MODULES], "lora_core.testing", "lora_core.protocols"):
        module = importlib.import_module(name)
        assert module.__doc__, name
        for public in module.__all__:
            value = getattr(module, public)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__doc__, f"{name}.{public} has no docstring"
        assert doctest.testmod(module).failed == 0, name

"""Docs generated from code (rules, configuration, toolkit) are current, and the plugin guide runs as written."""

from __future__ import annotations

from pathlib import Path

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


def test_the_plugin_guide_trainer_and_command_run_as_written(tmp_path, monkeypatch):
    """docs/plugins.md: the trainer example trains through `lorakit train`'s gate and run folder;
    the command example registers a `lorakit audit` that click can show."""
    import types

    from click.testing import CliRunner

    from lora_core.testing import make_csv_dataset, registry_with
    from lora_core.train import TrainOptions, train
    from tests.conftest import REPO

    blocks = _python_blocks((REPO / "docs" / "plugins.md").read_text(encoding="utf-8"))
    trainer = types.ModuleType("acme_trainer")
    exec(compile(next(b for b in blocks if "class MyTrainer" in b), "docs/plugins.md (trainer)", "exec"),
         trainer.__dict__)
    command = types.ModuleType("acme_command")
    exec(compile(next(b for b in blocks if "def audit" in b), "docs/plugins.md (command)", "exec"), command.__dict__)
    registry = registry_with(trainer, command, names=["acme-trainer", "acme-command"])

    monkeypatch.chdir(tmp_path)
    dataset = make_csv_dataset(tmp_path / "data", [("a.png", "a red fox in the snow")]).parent
    reports: list[str] = []
    outcome, _, folder = train(dataset, TrainOptions(trainer="mine", tag="t1"), registry, reports.append,
                               reports.append)
    assert (outcome.steps, outcome.epochs) == (100, 1) and reports == ["epoch 1: loss 0.12"]
    assert folder == Path("runs/data-t1") and (tmp_path / folder / "lint-report.txt").is_file()

    audit = registry.commands["audit"]
    assert audit.plugin == "acme-command"
    shown = CliRunner().invoke(audit.command, ["--help"])
    assert shown.exit_code == 0 and "Audit DATASET against our house rules." in shown.output

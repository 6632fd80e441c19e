"""The plugin engine: in-memory plugins, validation, isolation of failures, disabling, requiring."""

from __future__ import annotations

import inspect
import types

import pytest

import lora_core
from lora_core import Fix, Rule, Severity, hookimpl, hookspecs
from lora_core.plugins import load_plugins
from lora_core.testing import make_csv_dataset, registry_with


class Watermark(Rule):
    """## What it does\nFlags `watermark`."""

    code = "TS101"
    name = "watermark"
    summary = "mentions a watermark"
    severity = Severity.ERROR

    def check_record(self, record, ctx):
        if "watermark" in (record.caption or ""):
            yield self.at_caption(record, "watermark tag", fix=None)


def plugin_with(*rules: type) -> types.SimpleNamespace:
    @hookimpl
    def register_rules(register):
        for rule in rules:
            register(rule)

    return types.SimpleNamespace(register_rules=register_rules)


def test_in_memory_plugin_rule_fires_next_to_builtins(tmp_path):
    registry = registry_with(plugin_with(Watermark), names=["wm"])
    assert registry.rules["TS101"].plugin == "wm"
    assert registry.plugins["wm"].registered == {"rules": ["TS101"]}
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk,  neon city, watermark")])
    result = lora_core.lint(path, registry=registry, isolated=True)
    assert {v.code for v in result} == {"TS101", "LK101"}
    assert result.exit_code() == 1


def test_duplicate_rule_code_names_both_plugins():
    class Clash(Watermark):
        name = "other-name"

    with pytest.raises(lora_core.PluginError, match="TS101: registered by plugin 'first' and again by plugin 'second'"):
        registry_with(plugin_with(Watermark), plugin_with(Clash), builtins=False, names=["first", "second"])


def test_builtin_code_cannot_be_taken():
    class Fake(Watermark):
        code, name = "LK101", "fake"

    with pytest.raises(lora_core.PluginError, match="LK101: registered by plugin 'hygiene'"):
        registry_with(plugin_with(Fake), names=["fake"])


@pytest.mark.parametrize(
    ("attrs", "message"),
    [({"code": "lk1"}, "codes are 1-4 capital letters"), ({"name": "Bad Name"}, "kebab-case"),
     ({"severity": "error"}, "must be a lora_core.Severity")],
)
def test_invalid_rule_metadata_fails_only_that_plugin(attrs, message):
    bad = type("Bad", (Watermark,), attrs)
    registry = registry_with(plugin_with(bad), names=["bad"])
    info = registry.plugins["bad"]
    assert info.status == "failed" and message in info.error
    assert "LK101" in registry.rules  # the others keep working


def test_plugin_raising_in_hook_is_recorded_and_rolled_back():
    @hookimpl
    def register_rules(register):
        register(Watermark)
        raise RuntimeError("boom")

    registry = registry_with(types.SimpleNamespace(register_rules=register_rules), names=["flaky"])
    assert registry.plugins["flaky"].status == "failed"
    assert "RuntimeError: boom" in registry.plugins["flaky"].error
    assert "TS101" not in registry.rules


def test_unknown_hook_name_is_a_plugin_error():
    @hookimpl
    def register_rule(register):  # typo: the hook is register_rules
        pass

    registry = registry_with(types.SimpleNamespace(register_rule=register_rule), names=["typo"])
    assert registry.plugins["typo"].status == "failed" and "unknown hook" in registry.plugins["typo"].error


def test_crashing_rule_is_isolated_and_exit_code_is_2(tmp_path):
    class Crash(Watermark):
        code, name = "TS102", "crash"

        def check_record(self, record, ctx):
            if record.image == "b.png":
                raise ZeroDivisionError("division by zero")
            return ()

    registry = registry_with(plugin_with(Crash), names=["crashy"])
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, neon, city"), ("b.png", "cybrpnk,  rain, night")])
    result = lora_core.lint(path, registry=registry, isolated=True)
    (crash,) = result.crashes
    assert (crash.code, crash.plugin, crash.location.line) == ("TS102", "crashy", 3)
    assert "ZeroDivisionError" in crash.describe() and "metadata.csv:3" in crash.describe()
    assert [v.code for v in result] == ["LK101"]  # the other rules still ran
    assert result.exit_code() == 2 and result.exit_code(exit_zero=True) == 2


def test_disable_by_name_and_environment(monkeypatch):
    assert "LK101" not in load_plugins(disabled=["hygiene"]).rules
    monkeypatch.setenv("LORAKIT_DISABLE_PLUGINS", "structure, hygiene")
    registry = load_plugins()
    assert not [c for c in registry.rules if c.startswith(("LK0", "LK1"))]
    assert registry.plugins["hygiene"].status == "disabled"
    with pytest.raises(lora_core.PluginError, match="cannot be disabled"):
        load_plugins(disabled=["core"])


def test_require_plugins():
    registry = load_plugins(disabled=["hygiene"])
    registry.require(["structure"])
    with pytest.raises(lora_core.PluginError, match="required plugin 'hygiene' is disabled"):
        registry.require(["hygiene"])
    with pytest.raises(lora_core.PluginError, match="'nope' is not installed"):
        registry.require(["nope"])


def test_fix_from_plugin_is_applied(tmp_path):
    class Swap(Watermark):
        code, name = "TS103", "swap"

        def check_record(self, record, ctx):
            at = (record.caption or "").find("machine")
            if at >= 0:
                fix = Fix.replace("be specific", at, at + 7, "gear device")
                yield self.at_caption(record, "vague", (at, at + 7), fix)

    registry = registry_with(plugin_with(Swap), names=["swap"])
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, machine")])
    assert lora_core.fix(path, registry=registry, isolated=True).applied == 1
    assert "cybrpnk, gear device" in path.read_text()


def test_every_hookspec_is_documented_with_its_signature():
    specs = [f for name, f in vars(hookspecs).items() if name.startswith("register_") and callable(f)]
    assert len(specs) == 8
    from lora_core.plugins import HOOK_ORDER

    assert sorted(HOOK_ORDER) == sorted(spec.__name__ for spec in specs)  # the loader calls every hook
    for spec in specs:
        assert list(inspect.signature(spec).parameters) == ["register"]
        assert spec.__doc__ and "register(" in spec.__doc__, spec.__name__

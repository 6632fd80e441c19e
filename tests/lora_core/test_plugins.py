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


# -- the loader's contracts (issue: "Draw the core's boundary") ---------------------------------


def test_an_implementation_may_take_fewer_arguments_than_its_spec():
    calls = []

    @hookimpl
    def register_rules():  # the spec passes `register`; pluggy's rule: only what the impl names
        calls.append("called")

    registry = registry_with(types.SimpleNamespace(register_rules=register_rules), names=["quiet"])
    assert calls == ["called"]
    assert registry.plugins["quiet"].status == "loaded"


def test_an_implementation_asking_for_an_unknown_argument_fails_alone():
    @hookimpl
    def register_rules(register, colour):
        register(Watermark)

    registry = registry_with(types.SimpleNamespace(register_rules=register_rules), names=["odd"])
    assert registry.plugins["odd"].status == "failed"
    assert "TS101" not in registry.rules and "LK101" in registry.rules


def test_a_duplicate_rule_code_is_a_typed_fatal_error():
    from lora_core.errors import PluginConflictError

    class Clash(Watermark):
        name = "other-name"

    with pytest.raises(PluginConflictError, match="duplicate rule code TS101"):
        registry_with(plugin_with(Watermark), plugin_with(Clash), names=["one", "two"])


def test_a_failed_plugin_is_rolled_back_completely_config_keys_included():
    import click

    from lora_core.config import ConfigKey, ConfigSection, Str

    @hookimpl
    def register_config(register):
        register(ConfigSection("train", "", [ConfigKey("my-trainer-key", Str(), "", "theirs")]))
        register(ConfigSection("own", "", [ConfigKey("k", Str(), "", "")]))

    @hookimpl
    def register_commands(register):
        register(click.Command("half-made", callback=lambda: None))

    @hookimpl
    def register_rules(register):
        register(Watermark)
        raise RuntimeError("broken after registering")

    broken = types.SimpleNamespace(register_config=register_config, register_commands=register_commands,
                                   register_rules=register_rules)
    registry = registry_with(broken, names=["broken"])
    assert registry.plugins["broken"].status == "failed"
    train = registry.config_sections["train"]
    assert train.key("my-trainer-key") is None and train.key("epochs") is not None and train.plugin == "lora"
    assert "own" not in registry.config_sections
    assert "half-made" not in registry.commands and "TS101" not in registry.rules
    from lora_core.config import resolve_config
    from lora_core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown key `my-trainer-key`"):
        resolve_config({"train": {"my-trainer-key": "x"}}, registry.config_sections)


def test_factories_receive_the_registry_when_they_ask_for_it(tmp_path):
    from lora_core.protocols import check_built

    seen = []

    class Asking:
        def __init__(self, model=None, device="auto", dtype="auto", registry=None):
            seen.append(registry)

        def caption(self, items, prompt=None):
            return ["x" for _ in items]

    @hookimpl
    def register_captioners(register):
        register("asking", Asking)

    registry = registry_with(types.SimpleNamespace(register_captioners=register_captioners), names=["asks"])
    built = registry.captioners["asking"].build(registry, model=None)
    check_built("captioner", "asking", "asks", built)
    assert seen == [registry]
    assert isinstance(built, lora_core.Captioner)


def test_a_factory_returning_no_captioner_is_named():
    from lora_core.errors import PluginError
    from lora_core.protocols import check_built

    with pytest.raises(PluginError, match="captioner 'bad' of plugin 'p': its factory returned object"):
        check_built("captioner", "bad", "p", object())


def test_the_training_pack_can_be_disabled_and_the_trainer_owns_train(tmp_path):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "a red fox in snow")])
    (path.parent / "lorakit.toml").write_text("[train]\nepochs = 30\n", encoding="utf-8")
    codes = {v.code for v in lora_core.lint(path, registry=load_plugins(builtin_only=True))}
    assert {"LK701", "LK704"} <= codes
    without_pack = lora_core.lint(path, registry=load_plugins(builtin_only=True, disabled=["training"]))
    assert not {v.code for v in without_pack} & {"LK701", "LK704"}
    registry = load_plugins(builtin_only=True)
    assert registry.config_sections["train"].plugin == "lora"
    assert {k.name for k in registry.config_sections["train"].keys} >= {"epochs", "learning-rate", "rank"}
    without_trainer = lora_core.lint(path, registry=load_plugins(builtin_only=True, disabled=["lora"]))
    assert without_trainer.datasets[0].config.ignored == ["train"]  # theirs, presumably: noted, not an error


def test_a_third_party_trainer_that_raises_is_named_and_leaves_no_run_folder(tmp_path, monkeypatch):
    from lora_core.errors import PluginError
    from lora_core.train import TrainOptions, train

    class Crashing:
        def train(self, job):
            raise RuntimeError("NaN loss")

    @hookimpl
    def register_trainers(register):
        register("crashing", Crashing)

    registry = registry_with(types.SimpleNamespace(register_trainers=register_trainers), names=["acme"])
    monkeypatch.chdir(tmp_path)
    dataset = make_csv_dataset(tmp_path / "data", [("a.png", "a red fox in the snow")]).parent
    with pytest.raises(PluginError, match="trainer 'crashing' of plugin 'acme' failed: RuntimeError: NaN loss"):
        train(dataset, TrainOptions(trainer="crashing", tag="t"), registry, print, print)
    assert not (tmp_path / "runs" / "data-t").exists()  # nothing to resume: the folder is removed

"""Plugin loading and the registry of everything plugins contribute.

`load_plugins()` is a factory: each call builds a fresh pluggy PluginManager, loads every entry
point of the "lorakit" group one at a time (a plugin that fails to import is recorded, not
fatal), then calls each plugin's `register_*` hooks one plugin at a time so that what a plugin
registers, and any error it raises, is attributed to it. Built-in packs are entry points of the
"lorakit" distribution itself and go through exactly the same path.

A plugin that fails is rolled back completely: its rules, readers, formats, commands, captioners,
trainers, lexicon entries and the config keys it added to a shared section all go, so a broken
plugin is as if it were not installed. Only `PluginConflictError` (two plugins claiming one rule
code) stops loading.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from lora_core import hookspecs
from lora_core.config import ConfigSection
from lora_core.errors import LorakitError, PluginConflictError, PluginError
from lora_core.protocols import check_built
from lora_core.rules import CODE_PATTERN, NAME_PATTERN, Rule
from lora_core.violations import Severity

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "LexiconEntry",
    "OutputFormat",
    "PluginCommand",
    "PluginInfo",
    "Registered",
    "Registry",
    "load_plugins",
    "missing_requirements",
]

ENTRY_POINT_GROUP = "lorakit"
DISABLE_ENV = "LORAKIT_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "lorakit"
#: Plugins the tool cannot work without; they cannot be disabled.
ESSENTIAL = frozenset({"core"})
#: The order the registration hooks are called in: config sections first, so that everything
#: registered later can be checked against them.
HOOK_ORDER = ("register_config", "register_readers", "register_formats", "register_rules", "register_commands",
              "register_captioners", "register_trainers", "register_lexicon")


@dataclass
class PluginInfo:
    """One plugin as `lorakit plugins` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    status: str = "loaded"  # loaded | disabled | failed
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, what: str) -> None:
        self.registered.setdefault(kind, []).append(what)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "status": self.status,
            "error": self.error,
            "registers": self.registered,
        }


@dataclass
class Registered:
    """A captioner or trainer factory with what its plugin said of it.

    Known details (read by lorakit): ``description``; for captioners ``default_model`` (shown by
    `lorakit plugins`), ``takes_prompt`` (``--prompt`` goes only to captioners that take one) and
    ``answers_questions`` (``--template`` asks such captioners its slot questions).
    """

    name: str
    factory: Callable[..., Any]
    plugin: str
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "captioner"  # or "trainer"

    @property
    def description(self) -> str:
        return str(self.info.get("description") or "")

    @property
    def default_model(self) -> str | None:
        model = self.info.get("default_model")
        return str(model) if model else None

    @property
    def takes_prompt(self) -> bool:
        return bool(self.info.get("takes_prompt", False))

    @property
    def answers_questions(self) -> bool:
        return bool(self.info.get("answers_questions", False))

    def build(self, registry: Registry, **arguments: Any) -> Any:
        """Call the factory with `arguments`, plus the registry when the factory names a
        ``registry`` parameter (so a plugin never loads the plugin system a second time), and
        check what it returns against the Captioner or Trainer protocol."""
        if accepts_argument(self.factory, "registry"):
            arguments["registry"] = registry
        with registry.attributed(self.plugin, f"{self.kind} {self.name!r}"):
            built = self.factory(**arguments)
        check_built(self.kind, self.name, self.plugin, built)
        return built


def accepts_argument(function: Callable[..., Any], name: str) -> bool:
    """True when `function` names a parameter `name` that can be passed by keyword. A bare
    `**kwargs` does not count: such a factory often forwards its options to a model loader,
    which must not receive lorakit's registry."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    found = parameters.get(name)
    return found is not None and found.kind in (found.POSITIONAL_OR_KEYWORD, found.KEYWORD_ONLY)


@dataclass
class PluginCommand:
    """A `lorakit` subcommand a plugin contributed (a click command)."""

    name: str
    command: Any  # click.Command: click is imported only where commands are built
    plugin: str


@dataclass(frozen=True)
class LexiconEntry:
    """A style group or subject kind a plugin added to the inference lexicons."""

    kind: str  # "style" or "subject"
    name: str
    terms: tuple[str, ...]
    compatible: tuple[str, ...] = ()
    heads: tuple[str, ...] = ()
    plugin: str = ""


@dataclass
class OutputFormat:
    name: str
    render: Callable[..., None]
    description: str
    plugin: str


class Registry:
    """Everything the loaded plugins registered, validated as it arrived."""

    def __init__(self) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self.rules: dict[str, Rule] = {}
        self.readers: list[Any] = []
        self.formats: dict[str, OutputFormat] = {}
        self.config_sections: dict[str, ConfigSection] = {}
        self.captioners: dict[str, Registered] = {}
        self.trainers: dict[str, Registered] = {}
        self.lexicon: list[LexiconEntry] = []
        self.commands: dict[str, PluginCommand] = {}
        self.pm: pluggy.PluginManager | None = None
        # (section, key) -> the plugin that registered the key: a section can be shared
        self._key_owners: dict[tuple[str, str], str] = {}

    # -- registration callbacks (bound to one plugin at a time) ---------------------------------

    def _add_rule(self, plugin: str, rule_class: type) -> None:
        if not (isinstance(rule_class, type) and issubclass(rule_class, Rule)):
            raise PluginError(f"plugin {plugin!r} registered {rule_class!r}, which is not a Rule subclass")
        code, name = rule_class.code, rule_class.name
        if not CODE_PATTERN.match(code or ""):
            raise PluginError(
                f"plugin {plugin!r}: rule {rule_class.__name__} has code {code!r}; codes are 1-4 capital "
                "letters and 3-4 digits (e.g. EX101)"
            )
        if not NAME_PATTERN.match(name or ""):
            raise PluginError(f"plugin {plugin!r}: rule {code} has name {name!r}; names are kebab-case")
        if not isinstance(rule_class.severity, Severity):
            raise PluginError(f"plugin {plugin!r}: rule {code} severity must be a lora_core.Severity")
        if code in self.rules:
            raise PluginConflictError(
                f"duplicate rule code {code}: registered by plugin {self.rules[code].plugin!r} "
                f"and again by plugin {plugin!r}; uninstall one, or skip one with `-p no:{plugin}`"
            )
        other = next((r for r in self.rules.values() if r.name == name), None)
        if other is not None:
            raise PluginError(
                f"duplicate rule name {name!r}: {other.code} from plugin {other.plugin!r} and "
                f"{code} from plugin {plugin!r}"
            )
        rule = rule_class()
        rule.plugin = plugin
        self.rules[code] = rule
        self.plugins[plugin].note("rules", code)

    def _add_reader(self, plugin: str, reader: Any) -> None:
        name = getattr(reader, "name", "")
        if not name or not callable(getattr(reader, "claims", None)) or not callable(getattr(reader, "read", None)):
            raise PluginError(f"plugin {plugin!r} registered a reader without name/claims/read: {reader!r}")
        if any(r.name == name for r in self.readers):
            raise PluginError(f"duplicate dataset reader {name!r} (from plugin {plugin!r})")
        reader.plugin = plugin
        self.readers.append(reader)
        self.plugins[plugin].note("readers", name)

    def _add_format(self, plugin: str, name: str, render: Callable[..., None], description: str = "") -> None:
        if name in self.formats:
            raise PluginError(
                f"duplicate output format {name!r}: from plugin {self.formats[name].plugin!r} and {plugin!r}"
            )
        self.formats[name] = OutputFormat(name, render, description, plugin)
        self.plugins[plugin].note("formats", name)

    def _add_config(self, plugin: str, section: ConfigSection) -> None:
        if not isinstance(section, ConfigSection):
            raise PluginError(f"plugin {plugin!r} registered {section!r}, which is not a ConfigSection")
        existing = self.config_sections.get(section.name)
        if existing is not None:
            # Several plugins may contribute keys to one section (the rule pack that checks [train]
            # and the trainer that uses it); one key has one owner.
            clash = {k.name for k in existing.keys} & {k.name for k in section.keys}
            if clash:
                raise PluginError(f"config key(s) {', '.join(sorted(clash))} of [{section.name}] registered by "
                                  f"plugin {existing.plugin!r} and again by plugin {plugin!r}")
            existing.keys.extend(section.keys)
        else:
            self.config_sections[section.name] = ConfigSection(
                section.name, section.description, list(section.keys), plugin)
        for key in section.keys:
            self._key_owners[(section.name, key.name)] = plugin
        self.plugins[plugin].note("config", f"[{section.name}]")

    def _add_command(self, plugin: str, command: Any) -> None:
        import sys

        import click

        if not isinstance(command, click.Command) or not command.name:
            raise PluginError(f"plugin {plugin!r} registered {command!r}, which is not a named click command")
        name = command.name
        cli_module = sys.modules.get("lora_core.cli")  # loaded when a command line runs (the API needs no CLI)
        if cli_module is not None and name in cli_module.cli.commands:
            raise PluginError(f"plugin {plugin!r}: command {name!r} is one of lorakit's own")
        if name in self.commands:
            raise PluginError(f"duplicate command {name!r}: from plugin {self.commands[name].plugin!r} and {plugin!r}")
        self.commands[name] = PluginCommand(name, command, plugin)
        self.plugins[plugin].note("commands", name)

    def _add_named(self, table: dict[str, Registered], kind: str, plugin: str, name: str,
                   factory: Callable[..., Any], **info: Any) -> None:
        if name in table:
            raise PluginError(f"duplicate {kind} {name!r}: from plugin {table[name].plugin!r} and {plugin!r}")
        table[name] = Registered(name, factory, plugin, info, kind)
        self.plugins[plugin].note(kind + "s", name)

    def _add_lexicon(self, plugin: str, kind: str, name: str, terms: Iterable[str],
                     compatible: Iterable[str] = (), heads: Iterable[str] = ()) -> None:
        if kind not in ("style", "subject"):
            raise PluginError(f"plugin {plugin!r}: lexicon kind must be \"style\" or \"subject\", not {kind!r}")
        words = [t for t in terms if isinstance(t, str) and t.strip()]
        if not name or not words:
            raise PluginError(f"plugin {plugin!r}: lexicon entry {name!r} needs a name and at least one term")
        self.lexicon.append(LexiconEntry(kind, name, tuple(words), tuple(compatible), tuple(heads), plugin))
        self.plugins[plugin].note("lexicon", f"{kind}:{name}")

    def callbacks(self, plugin: str) -> dict[str, Callable[..., None]]:
        return {
            "register_rules": lambda rule_class: self._add_rule(plugin, rule_class),
            "register_readers": lambda reader: self._add_reader(plugin, reader),
            "register_formats": lambda name, render, description="": self._add_format(
                plugin, name, render, description),
            "register_config": lambda section: self._add_config(plugin, section),
            "register_commands": lambda command: self._add_command(plugin, command),
            "register_captioners": lambda name, factory, **info: self._add_named(
                self.captioners, "captioner", plugin, name, factory, **info),
            "register_trainers": lambda name, factory, **info: self._add_named(
                self.trainers, "trainer", plugin, name, factory, **info),
            "register_lexicon": lambda kind, name, terms, compatible=(), heads=(): self._add_lexicon(
                plugin, kind, name, terms, compatible, heads),
        }

    # -- queries ---------------------------------------------------------------------------------

    @property
    def failed(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "failed"]

    @contextlib.contextmanager
    def attributed(self, plugin: str, what: str) -> Iterator[None]:
        """Run a third-party plugin's code (a factory, a captioner, a trainer): an exception it
        raises, other than lorakit's own one-line errors, becomes a PluginError naming `what` and
        the plugin, instead of an "internal error" that asks users to report it to lorakit.
        lorakit's own plugins' exceptions stay as they are: those are lorakit's bugs."""
        try:
            yield
        except (LorakitError, RecursionError, MemoryError):
            raise
        except Exception as exc:
            info = self.plugins.get(plugin)
            if info is None or info.builtin:
                raise
            raise PluginError(f"{what} of plugin {plugin!r} failed: {type(exc).__name__}: {exc}") from exc

    @property
    def disabled(self) -> list[str]:
        """Names of the plugins installed but disabled (`-p no:NAME`, LORAKIT_DISABLE_PLUGINS)."""
        return [p.name for p in self.plugins.values() if p.status == "disabled"]

    def remove(self, plugin: str) -> None:
        """Drop everything `plugin` registered: its rules, readers, formats, commands, captioners,
        trainers, lexicon entries, and its config keys (from shared sections too)."""
        self.rules = {c: r for c, r in self.rules.items() if r.plugin != plugin}
        self.readers = [r for r in self.readers if getattr(r, "plugin", None) != plugin]
        self.formats = {k: f for k, f in self.formats.items() if f.plugin != plugin}
        self.commands = {k: c for k, c in self.commands.items() if c.plugin != plugin}
        self.captioners = {k: c for k, c in self.captioners.items() if c.plugin != plugin}
        self.trainers = {k: t for k, t in self.trainers.items() if t.plugin != plugin}
        self.lexicon = [e for e in self.lexicon if e.plugin != plugin]
        owned = {pair for pair, owner in self._key_owners.items() if owner == plugin}
        for section_name, key_name in owned:
            del self._key_owners[(section_name, key_name)]
        for name, section in list(self.config_sections.items()):
            keys = [k for k in section.keys if (name, k.name) not in owned]
            if len(keys) == len(section.keys) and section.plugin != plugin:
                continue  # nothing of the failed plugin's in this section
            if not keys:
                del self.config_sections[name]
                continue
            owner = section.plugin
            if owner == plugin:  # the section stays for the keys others added: the first of them owns it
                owner = self._key_owners[(name, keys[0].name)]
            self.config_sections[name] = ConfigSection(section.name, section.description, keys, owner)

    def rule(self, code_or_name: str) -> Rule | None:
        key = code_or_name.strip()
        rule = self.rules.get(key.upper())
        if rule is None:
            rule = next((r for r in self.rules.values() if r.name == key.lower()), None)
        return rule

    def require(self, names: Iterable[str]) -> None:
        """Raise PluginError unless every named plugin is loaded."""
        for name in names:
            info = self.plugins.get(name)
            if info is None:
                raise PluginError(f"required plugin {name!r} is not installed (see `lorakit plugins`)")
            if info.status != "loaded":
                why = f": {info.error}" if info.error else ""
                raise PluginError(f"required plugin {name!r} is {info.status}{why}")


def _disabled_from_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def load_plugins(
    *,
    disabled: Iterable[str] = (),
    entry_points: bool = True,
    extra: Sequence[tuple[str, object]] = (),
    builtin_only: bool = False,
    hooks: Sequence[str] = HOOK_ORDER,
) -> Registry:
    """Build a Registry from the "lorakit" entry points plus `extra` (name, plugin) pairs.

    disabled: plugin names to skip (also read from LORAKIT_DISABLE_PLUGINS, comma-separated).
    entry_points: False loads only `extra` (tests register in-memory plugins this way).
    builtin_only: only the entry points of the lorakit distribution itself (used for the docs).
    hooks: which registration hooks to call (the CLI asks for "register_commands" alone to list
    commands: no rule, reader or format is built for `lorakit --help`).
    """
    blocked = set(disabled) | _disabled_from_env()
    for name in blocked & ESSENTIAL:
        raise PluginError(f"plugin {name!r} is part of lorakit's core and cannot be disabled")
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    registry.pm = pm

    candidates: list[tuple[str, Callable[[], object], PluginInfo]] = []
    if entry_points:
        seen: set[str] = set()
        # Each entry point has its own Distribution object, and reading a name or version parses
        # the METADATA file again: once per distribution is enough (lorakit alone has 15 plugins).
        parsed: dict[str, tuple[str | None, str | None]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            key = str(getattr(dist, "_path", id(dist)))
            if key not in parsed:
                fields = dist.metadata if dist is not None else None
                parsed[key] = (fields["Name"], fields["Version"]) if fields is not None else (None, None)
            dist_name, dist_version = parsed[key]
            if builtin_only and dist_name != BUILTIN_DISTRIBUTION:
                continue
            if ep.name in seen:
                continue  # the same distribution visible twice on sys.path
            seen.add(ep.name)
            info = PluginInfo(ep.name, dist_name, dist_version, builtin=dist_name == BUILTIN_DISTRIBUTION)
            candidates.append((ep.name, ep.load, info))
        if "core" not in seen:
            raise PluginError(
                "lorakit's own plugins are not registered: install the package (`pip install -e .` "
                "in a checkout) rather than running it from the source folder"
            )
    for name, plugin in extra:
        candidates.append((name, _returning(plugin), PluginInfo(name, None, None)))

    loaded: list[str] = []
    for name, load, info in candidates:
        registry.plugins[name] = info
        if name in blocked:
            info.status = "disabled"
            continue
        try:
            pm.register(load(), name=name)
        except (Exception, SystemExit) as exc:  # SystemExit: a plugin calling sys.exit() at import
            info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
            continue
        loaded.append(name)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        bad = getattr(exc, "plugin", None)
        bad_name = pm.get_name(bad) if bad is not None else None
        if bad_name is None:
            raise PluginError(str(exc)) from None
        _fail(registry, pm, bad_name, f"unknown hook: {exc}")

    # Call each plugin's hooks separately so errors and registrations are attributed to it. An
    # implementation gets only the arguments it names (pluggy's own rule: the hookimpl's argnames),
    # so hooks can gain arguments later without breaking plugins written against older specs.
    for hook_name in (name for name in HOOK_ORDER if name in hooks):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            if registry.plugins[plugin_name].status != "loaded":
                continue
            available = {"register": registry.callbacks(plugin_name)[hook_name]}
            try:
                impl.function(*[available[name] for name in impl.argnames])
            except PluginConflictError:
                raise
            except (Exception, SystemExit) as exc:
                _fail(registry, pm, plugin_name, f"{type(exc).__name__}: {exc}")
    return registry


def missing_requirements(plugin: object) -> list[str]:
    """The modules a plugin declares in `REQUIRES` that are not installed (found without importing
    them: listing plugins stays light)."""
    import importlib.util

    missing = []
    for module in getattr(plugin, "REQUIRES", ()) or ():
        try:
            found = importlib.util.find_spec(str(module)) is not None
        except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
            found = False
        if not found:
            missing.append(str(module))
    return missing


def _returning(plugin: object) -> Callable[[], object]:
    """A loader for a plugin object given in memory (an entry point's is `ep.load`)."""
    return lambda: plugin


def _fail(registry: Registry, pm: pluggy.PluginManager, name: str, error: str) -> None:
    info = registry.plugins[name]
    info.status, info.error = "failed", error
    info.registered.clear()
    registry.remove(name)  # all or nothing: what it registered before failing goes too
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)

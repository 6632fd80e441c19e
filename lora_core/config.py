"""Configuration: `lorakit.toml` or `[tool.lorakit]` in pyproject.toml, validated against the
sections plugins register.

Lookup walks up from the dataset's folder and takes the first `lorakit.toml`, or the first
`pyproject.toml` that has a `[tool.lorakit]` table (as ruff does). Every key is declared in a
ConfigSection with a type and a default; unknown keys and wrong types are a ConfigError naming
the file, the section and the key.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.errors import ConfigError
from lora_core.violations import Location

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "CONFIG_FILENAME",
    "Bool",
    "Config",
    "ConfigKey",
    "ConfigSection",
    "Float",
    "Int",
    "ListOf",
    "MapOf",
    "Str",
    "ValueType",
    "key_location",
]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILENAME = "lorakit.toml"
#: Keys allowed at the top level, outside any section.
TOP_LEVEL_KEYS = {"require-plugins": "list of plugin names that must load, or the command exits 2"}


# ---------------------------------------------------------------------------------------------
# Value types: each checks a raw TOML value and returns it (possibly converted) or raises ValueError.


class ValueType:
    label = "value"

    def check(self, value: Any) -> Any:
        raise NotImplementedError


class Str(ValueType):
    label = "a string"

    def __init__(self, choices: Iterable[str] | None = None) -> None:
        self.choices = tuple(choices) if choices else None
        if self.choices:
            self.label = "one of " + ", ".join(f'"{c}"' for c in self.choices)

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError
        if self.choices and value not in self.choices:
            raise ValueError
        return value


class Int(ValueType):
    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.label = "an integer" + (f" in [{minimum}, {maximum}]" if maximum is not None else
                                     f" >= {minimum}" if minimum is not None else "")

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        if self.minimum is not None and value < self.minimum:
            raise ValueError
        if self.maximum is not None and value > self.maximum:
            raise ValueError
        return value


class Float(ValueType):
    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.label = "a number" + (f" in [{minimum}, {maximum}]" if maximum is not None else
                                   f" >= {minimum}" if minimum is not None else "")

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if value != value or value in (float("inf"), float("-inf")):  # nan, inf: TOML has them, settings do not
            raise ValueError
        if self.minimum is not None and value < self.minimum:
            raise ValueError
        if self.maximum is not None and value > self.maximum:
            raise ValueError
        return float(value)


class Bool(ValueType):
    label = "true or false"

    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError
        return value


class ListOf(ValueType):
    def __init__(self, item: ValueType) -> None:
        self.item = item
        self.label = f"a list of {item.label.removeprefix('a ').removeprefix('an ')}s"

    def check(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError
        return [self.item.check(v) for v in value]


class MapOf(ValueType):
    def __init__(self, item: ValueType) -> None:
        self.item = item
        self.label = f"a table of {item.label}"

    def check(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError
        return {str(k): self.item.check(v) for k, v in value.items()}


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: ValueType
    default: Any
    description: str
    #: Extra check on the converted value; raises ValueError("what is wrong") to reject it.
    validate: Callable[[Any], None] | None = None


@dataclass
class ConfigSection:
    """A `[name]` table: its keys, their types, defaults and documentation."""

    name: str
    description: str
    keys: list[ConfigKey]
    plugin: str = ""

    def key(self, name: str) -> ConfigKey | None:
        return next((k for k in self.keys if k.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {k.name: _copy(k.default) for k in self.keys}


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


# ---------------------------------------------------------------------------------------------
# Loading


@dataclass
class Config:
    """A resolved configuration: every registered section with defaults filled in."""

    path: Path | None  # the file it came from; None for defaults only
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # sections ("style") and keys ("style.prefix") the file sets
    lexicon: list[Any] = field(default_factory=list)  # plugins' lexicon entries (lora_core.plugins.LexiconEntry)
    #: Sections the file sets that no loaded plugin provides, left unchecked because plugins were
    #: disabled (`-p no:lora` with a `[train]` table): presumably theirs.
    ignored: list[str] = field(default_factory=list)

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.get(name, {})

    @property
    def require_plugins(self) -> list[str]:
        return list(self.top.get("require-plugins", []))


def key_location(path: Path | None, section: str, key: str) -> Location | None:
    """Where `key` of `[section]` is set in a config file (TOML parsers keep no positions)."""
    if path is None:
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    wanted = {f"[{section}]", f"[tool.lorakit.{section}]"}
    current = None
    key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.split("#", 1)[0].strip()
            continue
        if current in wanted and key_re.match(line):
            return Location(path, number, line.index(key) + 1)
    # A header only, or an inline table: point at the section header.
    for number, line in enumerate(lines, start=1):
        if line.strip().split("#", 1)[0].strip() in wanted:
            return Location(path, number, 1)
    return Location(path, 1, 1)


def find_config_file(start: Path) -> Path | None:
    """The first lorakit.toml, or pyproject.toml with [tool.lorakit], from start upwards."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        toml_file = candidate / CONFIG_FILENAME
        if toml_file.is_file():
            return toml_file
        if toml_file.exists():  # a folder (or a FIFO) named lorakit.toml: not silently skipped
            raise ConfigError(f"{toml_file}: is not a regular file; a lorakit config is a TOML file")
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file() and "lorakit" in _tool_table(_read_toml(pyproject)):
            return pyproject
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    if path.exists() and not path.is_file():  # a FIFO or a device would block the read
        raise ConfigError(f"{path}: not a regular file")
    try:
        with path.open("rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        kind = "UTF-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "not UTF-8"
        raise ConfigError(f"{path}: TOML files are UTF-8 text; this one is {kind} (byte {exc.start}); "
                          "save it as UTF-8") from None
    try:
        table: dict[str, Any] = tomllib.loads(text.removeprefix("\ufeff"))
        return table
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


def read_config_table(path: Path) -> dict[str, Any]:
    """The lorakit table of a config file (the whole file, or [tool.lorakit] of a pyproject)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        tool = _tool_table(data).get("lorakit")
        if tool is None:
            raise ConfigError(f"{path}: has no [tool.lorakit] table")
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: `lorakit` in [tool] must be a table ([tool.lorakit]), not {_show(tool)}")
        return tool
    return data


def _tool_table(data: dict[str, Any]) -> dict[str, Any]:
    tool = data.get("tool", {})
    return tool if isinstance(tool, dict) else {}


def resolve_config(
    table: dict[str, Any], sections: dict[str, ConfigSection], path: Path | None = None,
    disabled_plugins: Sequence[str] = (),
) -> Config:
    """Validate a raw lorakit table against the registered sections and fill in defaults.

    An unknown section is an error, unless plugins are disabled (`disabled_plugins`): it is then
    presumably one of theirs, and is listed in `Config.ignored` instead of checked."""
    where = str(path) if path else "configuration"
    prefix = "tool.lorakit." if path is not None and path.name == "pyproject.toml" else ""
    config = Config(path=path, sections={name: s.defaults() for name, s in sections.items()})
    for key, value in table.items():
        if isinstance(value, dict) and key not in TOP_LEVEL_KEYS:
            section = sections.get(key)
            if section is None and disabled_plugins:
                config.ignored.append(key)
                continue
            if section is None:
                raise ConfigError(
                    f"{where}: unknown section [{prefix}{key}]{_suggest(key, sections)}"
                    " (is the plugin that provides it installed? see `lorakit plugins`)"
                )
            checked = _check_section(value, section, where, prefix)
            config.sections[key].update(checked)
            config.present.add(key)
            config.present.update(f"{key}.{name}" for name in checked)  # keys set explicitly
        elif key in TOP_LEVEL_KEYS:
            try:
                config.top[key] = ListOf(Str()).check(value)
            except ValueError:
                raise ConfigError(f"{where}: `{key}` must be a list of strings") from None
        else:
            raise ConfigError(
                f"{where}: unknown top-level key `{key}`{_suggest(key, TOP_LEVEL_KEYS)}; "
                "keys belong in a section such as [lint] or [dataset]"
            )
    return config


def _check_section(raw: dict[str, Any], section: ConfigSection, where: str, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = [k.name for k in section.keys]
    for key, value in raw.items():
        spec = section.key(key)
        if spec is None:
            underscored = key.replace("_", "-")
            hint = f" (keys are kebab-case: `{underscored}`)" if underscored in names else _suggest(key, names)
            raise ConfigError(f"{where}: unknown key `{key}` in [{prefix}{section.name}]{hint}")
        try:
            out[key] = spec.type.check(value)
            if spec.validate is not None:
                spec.validate(out[key])
        except ValueError as exc:
            if exc.args:
                raise ConfigError(f"{where}: [{prefix}{section.name}] {key}: {exc.args[0]}") from None
            raise ConfigError(
                f"{where}: [{prefix}{section.name}] {key} must be {spec.type.label}, got {_show(value)}"
            ) from None
    return out


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "table"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"[:80]


# ---------------------------------------------------------------------------------------------
# The sections the core itself owns (registered by lora_core.builtins like any plugin's).

LINT_SECTION = ConfigSection(
    "lint",
    "Which rules run and how severe they are.",
    [
        ConfigKey("select", ListOf(Str()), ["ALL"],
                  'Rule codes, code prefixes or rule names to enable ("ALL" = every rule that is not opt-in).'),
        ConfigKey("extend-select", ListOf(Str()), [], "Added to `select` (keeps the default selection)."),
        ConfigKey("ignore", ListOf(Str()), [], "Rule codes, prefixes or names to disable."),
        ConfigKey("severity", MapOf(Str(("error", "warning", "info"))), {},
                  'Per-rule severity override, e.g. `{ LK107 = "error" }`.'),
        ConfigKey("per-image-ignores", MapOf(ListOf(Str())), {},
                  'Glob on the dataset-relative image path -> codes to ignore, e.g. `{ "img_017.png" = ["LK201"] }`.'),
        ConfigKey("strict", Bool(), False, "Warnings fail the lint too (same as `--strict`)."),
    ],
)

def _non_empty(value: str) -> None:
    if not value.strip():
        raise ValueError("must name a column (it is empty)")


def _check_model(value: str) -> None:
    if value:
        from lora_core.toolkit.models import model_keys, model_named

        if model_named(value) is None:
            raise ValueError(f"unknown model `{value}` (one of: {', '.join(model_keys())})")


DATASET_SECTION = ConfigSection(
    "dataset",
    "How datasets are read.",
    [
        ConfigKey("caption-column", Str(), "text", "CSV column / JSONL key holding the caption.",
                  validate=_non_empty),
        ConfigKey("image-column", Str(), "file_name", "CSV column / JSONL key holding the image path.",
                  validate=_non_empty),
        ConfigKey("caption-extension", Str(), ".txt", "Extension of caption sidecar files."),
        ConfigKey("model", Str(), "",
                  'The model the dataset trains: "sd1", "sd2", "sdxl", "pony", "illustrious", "sd3", "flux", '
                  '"flux-schnell", "chroma", "pixart", "sana", "lumina2", "qwen-image", "hidream", "wan", '
                  '"long-encoder" (common names too: "sd15", "flux-dev"). It sets the caption token budget (LK501) '
                  "and the form the model expects; empty: unknown (read from the trainer config when there is one).",
                  validate=_check_model),
    ],
)

# The thresholds are explained in lora_core/toolkit/conventions.py and docs/configuration.md.

INFER_SECTION = ConfigSection(
    "infer",
    "What lorakit infers from the dataset when the config does not say (trigger, style, concepts, wording).",
    [
        ConfigKey("enabled", Bool(), True,
                  "Infer the dataset's conventions (`--no-infer` turns it off for one run). Configured "
                  "values always win over inferred ones."),
        ConfigKey("trigger-share", Float(0.0, 1.0), 0.6,
                  "A rare token is the trigger when at least this share of a scope's captions has it "
                  "(a scope is the dataset, or one kohya concept folder)."),
        ConfigKey("style-share", Float(0.0, 1.0), 0.5,
                  "A style group is the set's style when at least this share of captions names it "
                  "(LK205 then reports conflicting styles)."),
        ConfigKey("style-required-share", Float(0.0, 1.0), 0.75,
                  "When at least this share of captions names the set's style, the others must name it too (LK201)."),
        ConfigKey("deviation-share", Float(0.0, 1.0), 0.2,
                  "A deviation (conflicting style, vague word, other spelling) is reported only while it is "
                  "at most this share of the scope: beyond it, it is a convention of its own."),
        ConfigKey("min-captions", Int(1), 5,
                  "Scopes with fewer captions infer nothing (too little evidence)."),
        ConfigKey("min-evidence", Int(1), 3,
                  "The fewest captions a convention must be seen in (a trigger, a specific phrasing)."),
        ConfigKey("styles", MapOf(ListOf(Str())), {},
                  'More style groups, or more terms for a built-in one: `{ "gothic" = ["gothic", "dark gothic"] }`.'),
    ],
)

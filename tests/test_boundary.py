"""The core's boundary, checked on the source: the framework imports no plugin, and lorakit's own
plugins (and the examples) use only the public surface a third-party plugin can rely on."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

from tests.conftest import REPO

#: Modules a plugin may import from, each with its `__all__` as the names it may import.
PUBLIC_MODULES = {
    "lora_core", "lora_core.api", "lora_core.atomic", "lora_core.config", "lora_core.errors",
    "lora_core.hookspecs", "lora_core.plugins", "lora_core.protocols", "lora_core.rules", "lora_core.train",
    "lora_core.violations", "lora_core.datasets", "lora_core.datasets.model", "lora_core.datasets.reader",
    "lora_core.testing", "lora_core.testing.tiny_models", "lora_core.toolkit",
}
PLUGIN_SOURCES = ("lint_rules", "plugins", "examples/lorakit-example-rules/lorakit_example_rules",
                  "examples/lorakit-filename-captioner/lorakit_filename_captioner")


def imports(folder: Path) -> list[tuple[Path, int, str, list[str]]]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path, node.lineno, node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(path, node.lineno, a.name, []) for a in node.names]
    return found


def test_the_framework_imports_no_plugin():
    plugin_packages = ("lorakit_rules", "lorakit_lora", "lorakit_blip", "lorakit_blip2", "lorakit_coca", "lorakit_wd",
                       "lorakit_openai", "lorakit_vlm", "lorakit_manual")
    bad = [f"{p.relative_to(REPO)}:{line} imports {module}" for p, line, module, _ in imports(REPO / "lora_core")
           if module.split(".")[0] in plugin_packages]
    assert not bad, bad


def test_plugins_use_only_the_public_surface():
    bad = []
    for source in PLUGIN_SOURCES:
        for path, line, module, names in imports(REPO / source):
            if not module.startswith("lora_core"):
                continue
            where = f"{path.relative_to(REPO)}:{line}"
            if module not in PUBLIC_MODULES and not module.startswith("lora_core.toolkit."):
                bad.append(f"{where}: {module} is internal")
                continue
            if module == "lora_core.testing.tiny_models":
                continue
            exported = set(getattr(importlib.import_module(module), "__all__", ()))
            bad += [f"{where}: {module}.{name} is not in its __all__" for name in names
                    if name not in exported and not importlib.util.find_spec(f"{module}.{name}")]
    assert not bad, "\n".join(bad)


def test_public_modules_declare_their_surface():
    from lora_core import toolkit

    for module in sorted(PUBLIC_MODULES | {f"lora_core.toolkit.{m}" for m in toolkit.MODULES}):
        if module in ("lora_core.toolkit", "lora_core.testing.tiny_models"):
            continue
        loaded = importlib.import_module(module)
        assert hasattr(loaded, "__all__"), module
        missing = [name for name in loaded.__all__ if not hasattr(loaded, name)]
        assert not missing, (module, missing)

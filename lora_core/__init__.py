"""lorakit core: lint, fix, caption and train LoRA datasets.

The public API (everything else is internal and may change)::

    lint(paths, **options) -> LintResult      # a sequence of Violation
    fix(paths, unsafe=False, write=True) -> FixResult
    load_plugins(...) -> Registry
    Rule, Severity, Applicability, Fix, Edit, Violation, Location, hookimpl
    Captioner, Trainer, ImageItem                  # what captioner and trainer plugins implement

Beside it, for plugin authors: `lora_core.hookspecs` (every hook), `lora_core.toolkit` (caption,
term, template, token, image and model helpers), `lora_core.testing` (test helpers and tiny
models), `lora_core.config` (config sections), `lora_core.datasets` (the reader interface) and
`lora_core.train` (TrainJob, TrainOutcome). docs/architecture.md draws the boundary.
"""

from __future__ import annotations

__version__ = "0.1.0"

from lora_core.api import FixResult, LintOptions, LintResult, fix, lint
from lora_core.errors import ConfigError, DatasetError, LorakitError, PluginError
from lora_core.hookspecs import hookimpl
from lora_core.plugins import Registry, load_plugins
from lora_core.protocols import Captioner, ImageItem, Trainer
from lora_core.rules import LintContext, Rule, RuleOption
from lora_core.violations import Applicability, Edit, Fix, Location, Severity, Violation

__all__ = [
    "Applicability",
    "Captioner",
    "ConfigError",
    "DatasetError",
    "Edit",
    "Fix",
    "FixResult",
    "ImageItem",
    "LintContext",
    "LintOptions",
    "LintResult",
    "Location",
    "LorakitError",
    "PluginError",
    "Registry",
    "Rule",
    "RuleOption",
    "Severity",
    "Trainer",
    "Violation",
    "__version__",
    "fix",
    "hookimpl",
    "lint",
    "load_plugins",
]

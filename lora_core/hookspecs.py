"""Every hook a lorakit plugin can implement. This module is the plugin API reference.

A plugin is a module (or object) registered under the "lorakit" entry-point group::

    # pyproject.toml of your plugin distribution
    [project.entry-points.lorakit]
    mypack = "mypack_rules"

and decorates functions with ``lora_core.hookimpl``. Each hook receives a ``register`` callback;
call it once per thing you contribute. The core validates every call (codes, names, duplicates)
and attributes errors to your plugin, so a broken plugin never takes the others down.

An implementation may accept fewer arguments than the spec (pluggy's rule, which the loader
follows: each implementation is called with exactly the arguments it names), which is how new
arguments can be added to a hook later without breaking existing plugins.

What plugins build on: the framework's API (``lora_core``: Rule, Violation, Fix, ...), the
protocols a captioner or trainer implements (``lora_core.protocols``), the toolkit
(``lora_core.toolkit``: caption helpers, terms, templates, CLIP tokens, image facts, model
loading) and the test helpers (``lora_core.testing``). docs/plugins.md walks through a plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "PROJECT",
    "hookimpl",
    "hookspec",
    "register_captioners",
    "register_commands",
    "register_config",
    "register_formats",
    "register_lexicon",
    "register_readers",
    "register_rules",
    "register_trainers",
]

PROJECT = "lorakit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_rules(register: Callable[[type], None]) -> None:
    """Contribute lint rules.

    ``register(rule_class)``: a subclass of ``lora_core.Rule`` with ``code`` (1-4 capital letters
    and 3-4 digits, e.g. ``EX101``), a kebab-case ``name``, ``summary``, ``severity``, an optional
    ``fix`` applicability, and a docstring with the sections What it does / Why it matters /
    Example / Fix. A code or name already registered by another plugin is refused, naming both.
    """


@hookspec
def register_readers(register: Callable[[Any], None]) -> None:
    """Contribute dataset readers.

    ``register(reader)``: an instance of ``lora_core.datasets.DatasetReader`` with a unique
    ``name``; readers are asked in descending ``priority`` whether they ``claims(path)``.
    """


@hookspec
def register_formats(register: Callable[..., None]) -> None:
    """Contribute output formats for ``lorakit lint --format NAME``.

    ``register(name, render, description)``: ``render(report, stream)`` writes a
    ``lora_core.reporters.Report`` to a text stream.
    """


@hookspec
def register_config(register: Callable[[Any], None]) -> None:
    """Contribute config sections (``[name]`` in lorakit.toml / ``[tool.lorakit.name]``).

    ``register(section)``: a ``lora_core.config.ConfigSection`` listing its keys, their types,
    defaults and documentation. Keys not declared by any plugin are rejected as unknown.
    """


@hookspec
def register_lexicon(register: Callable[..., None]) -> None:
    """Extend the lexicons the dataset-aware rules infer with (docs/configuration.md lists them).

    ``register("style", name, terms, compatible=())``: an art style / medium group for LK201 and
    LK205 (``compatible`` names the groups it does not conflict with; ``["*"]`` for a genre that
    goes with any medium). A built-in group's name adds terms to it.
    ``register("subject", name, terms, heads=())``: a kind of subject for LK203: its generic
    words (``terms``) and the head nouns its specific phrasings end with.
    """


@hookspec
def register_commands(register: Callable[[Any], None]) -> None:
    """Contribute ``lorakit`` subcommands (as llm's ``register_commands``).

    ``register(command)``: a ``click.Command`` (or group) with a name no other command has; it
    appears in ``lorakit --help`` and runs as ``lorakit NAME``. Build it with click at hook time,
    but import heavy libraries only inside the command's callback: ``lorakit --help`` loads every
    plugin's commands. lorakit's own trainer plugin contributes ``lorakit generate`` this way.
    """


@hookspec
def register_captioners(register: Callable[..., None]) -> None:
    """Contribute image captioners for ``lorakit caption``.

    ``register(name, factory, description="", default_model=None, takes_prompt=False,
    answers_questions=False)``: ``factory(model=None, device="auto", dtype="auto", **options)``
    returns a ``lora_core.protocols.Captioner`` (``caption(items, prompt=None) -> list[str]``).
    A factory that takes a ``registry`` argument gets the loaded ``Registry`` (to open datasets
    with its readers, say) instead of loading the plugin system again. ``takes_prompt``: whether
    ``--prompt`` is passed on (others get ``prompt=None``); ``answers_questions``: whether
    ``--template`` may ask it slot questions; ``default_model`` is shown by ``lorakit plugins``.
    Import heavy libraries (torch, transformers) inside the factory, never at module import
    time: ``lorakit lint`` loads every plugin and must stay light.
    """


@hookspec
def register_trainers(register: Callable[..., None]) -> None:
    """Contribute trainers for ``lorakit train``.

    ``register(name, factory, description="")``: ``factory()`` (or ``factory(registry=...)``)
    returns a ``lora_core.protocols.Trainer``: an object with
    ``train(job: lora_core.train.TrainJob) -> lora_core.train.TrainOutcome``. The job carries the
    linted dataset, the resolved config (``job.config.section("train")``), the run folder to
    write into, a cache folder, the lint summary, and ``report`` / ``warn`` callbacks; lint has
    already passed (or ``--allow-lint-errors`` was given, see ``job.allow_lint_errors``). As with
    captioners, heavy imports happen when training starts, never at module import time.
    """

"""Every hook a lorakit plugin can implement. This module is the plugin API reference.

A plugin is a module (or object) registered under the "lorakit" entry-point group::

    # pyproject.toml of your plugin distribution
    [project.entry-points.lorakit]
    mypack = "mypack_rules"

and decorates functions with ``lora_core.hookimpl``. Each hook receives a ``register`` callback;
call it once per thing you contribute. The core validates every call (codes, names, duplicates)
and attributes errors to your plugin, so a broken plugin never takes the others down.

An implementation may accept fewer arguments than the spec (pluggy allows it), which is how new
arguments can be added to a hook later without breaking existing plugins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

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
def register_captioners(register: Callable[..., None]) -> None:
    """Contribute image captioners for ``lorakit caption``.

    ``register(name, factory, **info)``: ``factory(model=None, device="auto", dtype="auto")``
    returns an object with ``caption(images, prompt=None) -> list[str]``. Import heavy libraries
    (torch, transformers) inside the factory, never at module import time: ``lorakit lint``
    loads every plugin and must stay light.
    """


@hookspec
def register_trainers(register: Callable[..., None]) -> None:
    """Contribute trainers for ``lorakit train``.

    ``register(name, factory, **info)``: ``factory()`` returns an object with
    ``train(job: lora_core.train.TrainJob) -> lora_core.train.TrainOutcome``. The job carries the
    linted dataset, the resolved config (``job.config.section("train")``), the run folder to
    write into, a cache folder, the lint summary, and ``report`` / ``warn`` callbacks; lint has
    already passed (or ``--allow-lint-errors`` was given, see ``job.allow_lint_errors``). As with
    captioners, heavy imports happen when training starts, never at module import time.
    """

"""`lorakit train`: the lint gate, the run folder, and the hand-over to a trainer plugin.

The gate runs exactly the lint `lorakit lint` runs on the dataset and its config (LK7xx checks
`[train]`). Any error blocks training before a model is loaded, unless `allow_lint_errors`, which
is recorded in the run folder and in the LoRA file's metadata.

A trainer plugin registers `factory()` (or `factory(registry=...)`) returning a
`lora_core.protocols.Trainer`: `train(job: TrainJob) -> TrainOutcome`; it writes its files into
`job.run_dir` and reports progress through `job.report`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_core.api import LintOptions, LintResult, lint
from lora_core.atomic import atomic_write_bytes
from lora_core.config import Config
from lora_core.errors import ConfigError, DatasetError, PluginError
from lora_core.plugins import Registry
from lora_core.toolkit.captions import valid_text
from lora_core.toolkit.hub import PICKLE_SUFFIXES
from lora_core.violations import Severity

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "TrainJob",
    "TrainOutcome",
]

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class TrainOptions:
    trainer: str = "lora"
    config: Path | None = None
    tag: str | None = None
    resume: bool = False
    allow_lint_errors: bool = False
    allow_pickle: bool = False
    device: str = "auto"
    base_model: str | None = None  # --base-model: wins over [train] base-model
    base_model_config: str | None = None  # --base-model-config


def _command_line_path(value: str) -> str:
    """A path given on the command line, relative to the current folder (absolute, so that the
    config file's folder does not change it); a hub id (`org/name`) stays as it is."""
    candidate = Path(value).expanduser()
    if candidate.exists() or value.startswith((".", "~", "/")) or candidate.suffix.lower() in FILE_SUFFIXES:
        return str(candidate.resolve())
    return value


@dataclass
class TrainJob:
    """Everything a trainer plugin gets: the linted dataset, the resolved config, where to write."""

    dataset: Any
    config: Config
    run_dir: Path
    cache_dir: Path
    name: str
    tag: str
    resume: bool
    allow_pickle: bool
    device: str
    lint_summary: dict[str, int]
    allow_lint_errors: bool
    report: Callable[[str], None]
    warn: Callable[[str], None]

    def resolve(self, value: str) -> str:
        """A path from the config, relative to the config file's folder; a hub id
        (`org/name`) stays as it is unless a folder of that name exists there."""
        if not value or self.config.path is None:
            return value
        candidate = Path(value).expanduser()
        if candidate.is_absolute():
            return str(candidate)
        local = self.config.path.parent / candidate
        if local.exists() or value.startswith((".", "~")) or candidate.suffix.lower() in FILE_SUFFIXES:
            return str(local)  # a file or folder (a missing one is reported with its full path)
        return value


FILE_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES, ".csv", ".jsonl")


@dataclass
class TrainOutcome:
    files: dict[str, Path] = field(default_factory=dict)  # role -> path ("diffusers", "kohya", "loss_csv", ...)
    steps: int = 0
    epochs: int = 0
    warnings: list[str] = field(default_factory=list)


class TrainingBlocked(Exception):
    """Lint found errors in the dataset or its config; the result says which."""

    def __init__(self, result: LintResult, errors: int) -> None:
        super().__init__(f"training blocked: {errors} lint error(s)")
        self.result, self.errors = result, errors


def lint_summary(result: LintResult) -> dict[str, int]:
    return {severity.value: result.count(severity) for severity in Severity}


def gate(dataset: Path, options: TrainOptions, registry: Registry) -> LintResult:
    result = lint(dataset, options=LintOptions(config=options.config), registry=registry)
    if result.crashes:
        raise PluginError(result.crashes[0].describe())
    errors = result.count(Severity.ERROR)
    if errors and not options.allow_lint_errors:
        raise TrainingBlocked(result, errors)
    return result


def run_folder(config: Config, dataset: Path, train: dict[str, Any], options: TrainOptions) -> tuple[Path, str, str]:
    """(run folder, name, tag): `<output-dir>/<name>-<tag>`; output-dir is relative to the current
    folder (as the output of any command), so runs never land inside the dataset being linted."""
    output = Path(str(train.get("output-dir") or "runs")).expanduser()
    folder_name = dataset.name if dataset.is_dir() else dataset.parent.name
    name = str(train.get("name") or folder_name or "lora")
    if options.tag is not None and not _TAG.match(options.tag):
        raise ConfigError(f"--tag {options.tag!r}: use letters, digits, '.', '_' and '-'")
    if options.resume:
        if options.tag is not None:
            folder = output / f"{name}-{options.tag}"
            if not folder.is_dir():
                raise ConfigError(f"--resume: {folder} does not exist")
            return folder, name, options.tag
        runs = sorted((p for p in output.glob(f"{name}-*") if (p / "checkpoints").is_dir()),
                      key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ConfigError(f"--resume: no run of {name!r} with checkpoints in {output}")
        return runs[-1], name, runs[-1].name[len(name) + 1:]
    tag = options.tag or _shared_tag(time.strftime("%Y%m%d-%H%M%S"))
    folder = output / f"{name}-{tag}"
    if folder.exists() and any(folder.iterdir()) and _is_main():
        raise ConfigError(f"{folder} exists: pass --resume to continue it, or another --tag")
    return folder, name, tag


def _is_main() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def _shared_tag(tag: str) -> str:
    """Under a distributed launch every process must name the same run folder: the first decides."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return tag
    import torch
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=not torch.cuda.is_available())  # cpu: a gloo group of CPU processes
    shared: str = broadcast_object_list([tag])[0]
    return shared


def train(dataset: Path, options: TrainOptions, registry: Registry, report: Callable[[str], None],
          warn: Callable[[str], None]) -> tuple[TrainOutcome, LintResult, Path]:
    """Gate, prepare the run folder, train. Raises TrainingBlocked when lint finds errors."""
    entry = registry.trainers.get(options.trainer)
    if entry is None:
        available = ", ".join(sorted(registry.trainers)) or "none installed"
        raise PluginError(f"no trainer {options.trainer!r} (available: {available}; see `lorakit plugins`)")
    result = gate(dataset, options, registry)
    if not result.datasets:
        raise DatasetError(f"{dataset}: nothing to train on")
    linted = result.datasets[0]
    config = linted.config
    for key, value in (("base-model", options.base_model), ("base-model-config", options.base_model_config)):
        if value:
            config.sections.setdefault("train", {})[key] = _command_line_path(value)
    folder, name, tag = run_folder(config, dataset, config.section("train"), options)
    job = TrainJob(dataset=linted.dataset, config=config, run_dir=folder, cache_dir=folder.parent / ".cache",
                   name=name, tag=tag, resume=options.resume, allow_pickle=options.allow_pickle,
                   device=options.device, lint_summary=lint_summary(result),
                   allow_lint_errors=options.allow_lint_errors, report=report, warn=warn)
    trainer = entry.build(registry)
    preflight = getattr(trainer, "preflight", None)
    if callable(preflight):
        with registry.attributed(entry.plugin, f"trainer {options.trainer!r}"):
            preflight(job)  # before the run folder exists: a bad setting leaves nothing behind
    errors = result.count(Severity.ERROR)
    if errors:
        warn(f"training despite {errors} lint error(s) (--allow-lint-errors); recorded in the run's metadata")
    made_output = not folder.parent.exists()
    folder.mkdir(parents=True, exist_ok=True)
    resolved = {"dataset": str(dataset), "trainer": options.trainer, "tag": tag, "config_file":
                str(config.path) if config.path else None, "allow_lint_errors": options.allow_lint_errors,
                "sections": config.sections}
    if _is_main():
        atomic_write_bytes(folder / "config.json", json.dumps(resolved, indent=2, default=str).encode())
        _write_lint_report(folder, result)
    try:
        with registry.attributed(entry.plugin, f"trainer {options.trainer!r}"):
            outcome = trainer.train(job)
    except BaseException:
        # A run that failed before its first checkpoint (a bad setting, a missing model, Ctrl-C
        # while loading) leaves nothing to resume: remove its folder so the same --tag works again.
        if not options.resume and _is_main() and not (folder / "checkpoints").exists():
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
            if made_output:
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()  # the `runs/` this run made, if nothing else is in it
        raise
    return outcome, result, folder


def _write_lint_report(folder: Path, result: LintResult) -> None:
    import io

    from lora_core.reporters import Report
    from lora_core.reporters.concise import render_concise

    buffer = io.StringIO()
    render_concise(Report(result), buffer)
    atomic_write_bytes(folder / "lint-report.txt", valid_text(buffer.getvalue()).encode("utf-8"))

"""The Python API: what the CLI calls, and what a Python user calls.

    >>> import lora_core
    >>> result = lora_core.lint("data/metadata.csv")
    >>> [v.code for v in result if v.severity is lora_core.Severity.ERROR]

Both `lint` and `fix` accept the same options as the CLI: `select`, `ignore`, `extend_select`
(adding to the config's), `config` (a file that replaces discovery), `isolated` (no config file
at all), `disabled_plugins` and a prebuilt `registry` (tests pass in-memory plugins this way).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from lora_core.atomic import inside_folder, write_error, write_user_file
from lora_core.config import CONFIG_FILENAME, Config, find_config_file, read_config_table, resolve_config
from lora_core.datasets import Dataset, DatasetReader, DatasetSettings, by_priority, call_reader, open_dataset
from lora_core.datasets.reader import files_as_read
from lora_core.engine import RuleCrash, Selection, run_rules
from lora_core.errors import ConfigError, DatasetError
from lora_core.fixer import FixOutcome, fix_dataset
from lora_core.plugins import PluginInfo, Registry, load_plugins
from lora_core.rules import Rule
from lora_core.violations import Severity, Violation

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "DatasetLint",
    "FixResult",
    "LintOptions",
    "LintResult",
    "dataset_settings",
    "dataset_targets",
    "separate_datasets",
    "prepare_dataset",
    "fix",
    "lint",
    "load_config",
]

PathLike = str | os.PathLike[str]


@dataclass
class LintOptions:
    """Command-line style overrides on top of the config file."""

    select: list[str] | None = None  # replaces [lint] select
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)  # added to [lint] ignore
    config: Path | None = None
    isolated: bool = False
    caption_column: str | None = None
    caption_extension: str | None = None
    require_plugins: list[str] = field(default_factory=list)
    jobs: int | None = None  # worker processes for the rules; None: 2 for big datasets on Linux
    semantic: bool = False  # run the CLIP agreement rules (sets [semantic] enabled)
    clip_model: str | None = None  # overrides [semantic] clip-model
    infer: bool = True  # False: infer nothing from the dataset (sets [infer] enabled = false)
    cache: bool = True  # False: neither read nor write the image cache (sets [images] cache = false)


@dataclass
class DatasetLint:
    """One dataset, the config it was linted with, and what was found."""

    dataset: Dataset
    config: Config
    rules: list[Rule]
    selection: Selection
    violations: list[Violation]


@dataclass
class LintResult(Sequence[Violation]):
    """All violations of a lint run (a sequence, sorted by file and position) plus run details."""

    violations: list[Violation]
    datasets: list[DatasetLint]
    crashes: list[RuleCrash]
    registry: Registry
    skipped: list[Path] = field(default_factory=list)

    @overload
    def __getitem__(self, index: int) -> Violation: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Violation]: ...
    def __getitem__(self, index: int | slice) -> Violation | Sequence[Violation]:
        return self.violations[index]

    def __len__(self) -> int:
        return len(self.violations)

    def __iter__(self) -> Iterator[Violation]:
        return iter(self.violations)

    def count(self, severity: Severity) -> int:  # a by-severity count in place of Sequence.count(value)
        return sum(1 for v in self.violations if v.severity is severity)

    @property
    def plugin_failures(self) -> list[PluginInfo]:
        return self.registry.failed

    @property
    def rules(self) -> list[Rule]:
        seen: dict[str, Rule] = {}
        for item in self.datasets:
            for rule in item.rules:
                seen[rule.code] = rule
        return [seen[c] for c in sorted(seen)]

    def exit_code(self, strict: bool = False, exit_zero: bool = False) -> int:
        """0: clean; 1: errors (or warnings with strict); 2: a rule crashed."""
        if self.crashes:
            return 2
        if exit_zero:
            return 0
        strict = strict or any(d.config.section("lint").get("strict") for d in self.datasets)
        worst = {v.severity for v in self.violations}
        if Severity.ERROR in worst or (strict and Severity.WARNING in worst):
            return 1
        return 0


@dataclass
class FixResult:
    """What `fix` did: how many violations it fixed, the new file contents, and what remains."""

    applied: int
    by_code: dict[str, int]
    changes: dict[Path, tuple[bytes, bytes]]  # path -> (old, new)
    remaining: LintResult
    converged: bool = True
    unsettled: list[str] = field(default_factory=list)  # codes whose fixes never settled (nothing written)
    invalid: list[str] = field(default_factory=list)  # fixes refused because their edits were invalid
    edits: int = 0  # fixes applied; fewer than `applied` when one change fixed several problems

    def diff(self, relative_to: Path | None = None) -> str:
        chunks: list[str] = []
        for path, (old, new) in sorted(self.changes.items()):
            name = display_path(path, relative_to)
            for line in difflib.unified_diff(
                old.decode("utf-8", "replace").splitlines(keepends=True),
                new.decode("utf-8", "replace").splitlines(keepends=True),
                fromfile=f"a/{name}", tofile=f"b/{name}",
            ):
                # A last line without its newline (most caption files) is marked the way diff and
                # git mark it, so the patch stays readable and `git apply` takes it.
                chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
        return "".join(chunks)


def display_path(path: Path, relative_to: Path | None = None) -> str:
    base = relative_to or Path.cwd()
    try:
        return os.path.relpath(path, base) if path.is_absolute() else str(path)
    except ValueError:  # another drive on Windows
        return str(path)


# ---------------------------------------------------------------------------------------------


def lint(
    paths: PathLike | Sequence[PathLike],
    *,
    options: LintOptions | None = None,
    registry: Registry | None = None,
    **kwargs: Any,
) -> LintResult:
    """Lint one or more datasets and return every violation found."""
    options, registry, targets, skipped = _start(paths, options, registry, kwargs)
    results: list[DatasetLint] = []
    crashes: list[RuleCrash] = []
    for target in targets:
        item, item_crashes = _lint_target(target, options, registry)
        results.append(item)
        crashes.extend(item_crashes)
    violations = sorted((v for r in results for v in r.violations), key=Violation.sort_key)
    return LintResult(violations, results, crashes, registry, skipped)


def fix(
    paths: PathLike | Sequence[PathLike],
    *,
    unsafe: bool = False,
    write: bool = True,
    options: LintOptions | None = None,
    registry: Registry | None = None,
    **kwargs: Any,
) -> FixResult:
    """Apply fixes (safe ones, or all with unsafe=True); write=False computes them only."""
    options, registry, targets, _ = _start(paths, options, registry, kwargs)
    total = FixOutcome()
    changes: dict[Path, tuple[bytes, bytes]] = {}
    converged = True
    read_as: dict[Path, bytes] = {}  # each changed file as lorakit read it
    roots: dict[Path, Path] = {}  # the dataset each changed file belongs to
    config_folders: dict[Path, Path] = {}  # the trainer config's folder, for files reached through one
    for target in targets:
        dataset, config, rules, selection = _prepare(target, options, registry)

        def run(dataset: Dataset = dataset, rules: list[Rule] = rules, selection: Selection = selection,
                config: Config = config) -> list[Violation]:
            return run_rules(dataset, rules, selection, config, jobs=options.jobs)[0]

        outcome = fix_dataset(dataset, run, unsafe)
        converged &= outcome.converged
        total.unsettled |= outcome.unsettled if not outcome.converged else set()
        total.invalid += outcome.invalid
        if not outcome.converged:
            continue  # fixes that never settle would write garbage: nothing of this dataset is written
        total.applied += outcome.applied
        total.edits += outcome.edits
        for code, n in outcome.by_code.items():
            total.by_code[code] = total.by_code.get(code, 0) + n
        assert dataset.reader is not None
        rendered = dataset.reader.render(dataset, outcome.file_changes)
        originals = files_as_read(dataset, rendered)
        for path, new in rendered.items():
            old = originals.get(path)
            if old is None:
                old = path.read_bytes()
            if new != old:
                changes[path] = (old, new)
                read_as[path] = old
                roots[path] = dataset.root
                if dataset.read_through_config:
                    config_folders[path] = dataset.path.parent
    _refuse_fixes_outside_configs(changes, config_folders)
    if write:
        written: list[Path] = []
        for path, (_, new) in changes.items():
            try:
                if path.read_bytes() != read_as[path]:
                    from lora_core.errors import OutputError

                    done = f"; {len(written)} other file(s) were fixed" if written else "; no file was changed"
                    raise OutputError(f"{path}: changed on disk while lorakit was fixing it (another editor?); "
                                      f"not overwritten{done}. Run --fix again")
                write_user_file(path, new, roots[path])
            except OSError as exc:
                done = f"; {len(written)} other file(s) were fixed" if written else "; no file was changed"
                raise write_error(path, exc, "the fixed captions" + done) from None
            written.append(path)
    # Re-read from disk, so the remaining violations point at the file as it now is.
    remaining = lint(paths, options=options, registry=registry)
    return FixResult(total.applied, total.by_code, changes, remaining, converged, sorted(total.unsettled),
                     total.invalid, total.edits)


def _refuse_fixes_outside_configs(changes: dict[Path, tuple[bytes, bytes]], config_folders: dict[Path, Path]) -> None:
    """A trainer config names folders anywhere (`../`, absolute paths): a downloaded one must not
    direct `--fix` there. Fixes through a config stay inside the config's folder; a file outside
    it is fixed by linting its folder directly. Nothing is written when one would be outside."""
    from lora_core.errors import OutputError

    for path in changes:
        folder = config_folders.get(path)
        if folder is None:
            continue
        if not inside_folder(path, folder):
            raise OutputError(f"{path}: outside the folder of the trainer config that names it ({folder}); a config "
                              f"never directs fixes out of its folder, so no file was changed. Fix that folder "
                              f"directly: lorakit lint {path.parent} --fix")


def _start(
    paths: PathLike | Sequence[PathLike], options: LintOptions | None, registry: Registry | None,
    kwargs: dict[str, Any],
) -> tuple[LintOptions, Registry, list[Path], list[Path]]:
    """Resolve options and plugins and find the datasets: what lint and fix both start with."""
    options = _options(options, kwargs)
    registry = registry if registry is not None else load_plugins()
    registry.require(options.require_plugins)
    targets, skipped = dataset_targets(paths, registry.readers)
    return options, registry, targets, skipped


def _options(options: LintOptions | None, kwargs: dict[str, Any]) -> LintOptions:
    options = options or LintOptions()
    for key, value in kwargs.items():
        if not hasattr(options, key):
            raise TypeError(f"unknown option {key!r}")
        if key == "config" and value is not None:
            value = Path(value)
        setattr(options, key, value)
    return options


def dataset_targets(
    paths: PathLike | Sequence[PathLike], readers: Sequence[DatasetReader] | None = None,
) -> tuple[list[Path], list[Path]]:
    """Datasets to lint for the given paths, and files that belong to no dataset.

    A path the readers read as a dataset (a metadata file, a trainer config, a folder) is one.
    A file that is only part of a dataset stands for that whole dataset (cross-file rules need
    every caption), which is how pre-commit's per-file invocation still gets dataset-level
    checks: the readers say which dataset (`DatasetReader.dataset_for`), asked in priority order,
    and the reader that reads that dataset must be the one that placed the file there (a caption
    sidecar beside a metadata.csv is not one of its captions). A caption, image or lorakit.toml
    that no reader places (a picture in docs/, a config above the datasets) is skipped.
    `readers`: the registry's (default: the installed plugins').
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if readers is None:
        readers = load_plugins().readers
    ordered = by_priority(readers)
    members = frozenset().union(*(r.member_suffixes for r in ordered))
    targets: list[Path] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    # the reader that reads each dataset found so far: pre-commit passes many files of one dataset
    reader_of: dict[Path, DatasetReader | None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise DatasetError(f"{path}: no such file or folder")
        target = path
        if path.is_file():
            placed = _place(path, ordered)
            if placed is not None:
                target, by = placed
                resolved = target.resolve()
                if resolved not in reader_of:
                    reader_of[resolved] = _reader_of(target, ordered)
                if reader_of[resolved] is not by:
                    skipped.append(path)
                    continue
            elif path.suffix.lower() in members or path.name == CONFIG_FILENAME:
                skipped.append(path)
                continue
        for each in (separate_datasets(target, ordered) if target.is_dir() else None) or [target]:
            key = each.resolve()
            if key not in seen:
                seen.add(key)
                targets.append(each)
    return targets, skipped


#: What makes a folder a dataset of its own: its metadata, its config, or kohya `N_name` folders.
_DATASET_FILES = ("metadata.csv", "metadata.jsonl", CONFIG_FILENAME)


def separate_datasets(folder: Path, readers: Sequence[DatasetReader]) -> list[Path] | None:
    """The datasets a folder holds side by side (`projects/cats/`, `projects/dogs/`, each with its
    own metadata, lorakit.toml or kohya `N_name` folders), or None when the folder is one dataset.

    Linted as one, two projects would be judged against each other (one identity balance, one
    inferred trigger). A folder with images or `N_name` folders of its own, one that a reader other
    than the plain sidecar one claims (a metadata file, a trainer config), or a kohya_ss project
    (`img/` beside `reg/`) stays one dataset."""
    from lora_core.datasets.reader import IMAGE_EXTENSIONS, KOHYA_FOLDER

    if any(r.name != "sidecar" and call_reader(r, "claims", folder) for r in readers):
        return None
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return None
    subfolders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            if KOHYA_FOLDER.match(entry.name):
                return None
            subfolders.append(Path(entry.path))
        elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS or entry.name in _DATASET_FILES:
            return None
    own = [sub for sub in subfolders if _is_dataset_root(sub)]
    if len(own) < 2:
        return None
    from lora_core.datasets.reader import regularisation_parent

    if any(regularisation_parent(sub.name) for sub in subfolders):
        return None  # kohya_ss's img/ + reg/: one training run
    return own


def _is_dataset_root(folder: Path) -> bool:
    from lora_core.datasets.reader import KOHYA_FOLDER

    try:
        with os.scandir(folder) as listing:
            return any(e.name in _DATASET_FILES or (KOHYA_FOLDER.match(e.name) is not None and e.is_dir())
                       for e in listing)
    except OSError:
        return False


def _place(path: Path, readers: Sequence[DatasetReader]) -> tuple[Path, DatasetReader] | None:
    """The dataset a member file stands for, and the reader that says so."""
    for reader in readers:
        found = call_reader(reader, "dataset_for", path)
        if found is not None:
            return Path(found), reader
    return None


def _reader_of(target: Path, readers: Sequence[DatasetReader]) -> DatasetReader | None:
    return next((r for r in readers if call_reader(r, "claims", target)), None)


def load_config(target: Path, options: LintOptions, registry: Registry) -> Config:
    """The config for a dataset: --config, else the nearest config file, else defaults."""
    sections = registry.config_sections
    path = None if options.isolated else options.config or find_config_file(target)
    if path is None:
        config = resolve_config({}, sections)
    elif not path.is_file():
        raise ConfigError(f"{path}: " + ("not a regular file" if path.exists() else "config file not found"))
    else:
        try:
            config = resolve_config(read_config_table(path), sections, path, registry.disabled)
        except ConfigError:
            # asked only when the file is not a lorakit config: no second parse on every lint
            reader = _reader_of(path, by_priority(registry.readers))
            if reader is not None:
                what = reader.what or f"a {reader.name} dataset"
                raise ConfigError(f"{path}: {what}, not a lorakit config: lint it as the dataset "
                                  f"(lorakit lint {path})") from None
            raise
    config.lexicon = list(registry.lexicon)
    if not options.infer and "infer" in config.sections:
        config.sections["infer"] = dict(config.sections["infer"], enabled=False)
    if "semantic" in config.sections and (options.semantic or options.clip_model):
        config.sections["semantic"] = dict(config.sections["semantic"], enabled=True)
        if options.clip_model:
            config.sections["semantic"]["clip-model"] = options.clip_model
    return config


def _prepare(target: Path, options: LintOptions, registry: Registry) -> tuple[Dataset, Config, list[Rule], Selection]:
    config = load_config(target, options, registry)
    registry.require(config.require_plugins)
    origin = str(config.path) if config.path else "command line"
    lint_settings = dict(config.section("lint"))
    if options.select is not None:
        lint_settings["select"] = options.select
    lint_settings["extend-select"] = [*lint_settings.get("extend-select", []), *options.extend_select]
    lint_settings["ignore"] = [*lint_settings.get("ignore", []), *options.ignore]
    selection = Selection.from_settings(lint_settings, origin)
    rules = selection.enabled_rules(registry.rules)
    dataset = open_dataset(target, dataset_settings(config, options), registry.readers)
    apply_dataset_settings(config, dataset)
    if not options.cache and "images" in config.sections:
        config.sections["images"] = {**config.sections["images"], "cache": False}
    return dataset, config, rules, selection


def prepare_dataset(target: Path, options: LintOptions, registry: Registry) -> tuple[Dataset, Config, list[Rule],
                                                                                      Selection]:
    """The dataset at `target` read, with its resolved config, the rules to run and the selection
    that chose them: everything a lint does before running the rules."""
    return _prepare(target, options, registry)


def refuse_overwriting_inputs(output: Path, dataset: Dataset, config_path: Path | None = None) -> None:
    """An output (`lint -o`, `export -o`) never replaces a file the dataset is made of: its
    metadata file or trainer config, a caption file, an image (captioned or not), the lorakit
    config it was read with. Raises OutputError (exit 2) naming the file."""
    from lora_core.errors import OutputError

    target = os.path.realpath(output)
    if not os.path.exists(target):
        return
    inputs = [source.path_str for source in dataset.sources]
    inputs += [r.image_path for r in dataset.records if isinstance(r.image_path, str)]
    root = str(dataset.root)
    inputs += [os.path.join(root, name) for name in dataset.images_on_disk]
    inputs.append(str(dataset.path))
    if config_path is not None:
        inputs.append(str(config_path))
    # the lorakit configs beside the dataset and each of its folders (a trainer config's subsets)
    folders = {root, *(os.path.dirname(p) for p in inputs if p)}
    inputs += [os.path.join(folder, name) for folder in folders for name in ("lorakit.toml", "pyproject.toml")]
    name = os.path.basename(target)
    if any(os.path.basename(p) == name and os.path.realpath(p) == target for p in inputs):
        raise OutputError(f"{output}: is an input of this lint (a file of the dataset, or its config); an output "
                          "never replaces it (choose another -o)")


def apply_dataset_settings(config: Config, dataset: Dataset) -> None:
    """What the dataset's own files state (a trainer's dataset config) becomes config, key by
    key, where the lorakit config does not set that key itself; it counts as configured."""
    for section, values in dataset.config_overrides.items():
        if section not in config.sections:
            continue
        for key, value in values.items():
            if f"{section}.{key}" in config.present:
                continue
            config.sections[section] = {**config.sections[section], key: value}
            config.present.add(f"{section}.{key}")


def dataset_settings(config: Config, options: LintOptions) -> DatasetSettings:
    """The [dataset] section with command-line overrides applied."""
    section = config.section("dataset")
    extension = options.caption_extension or section.get("caption-extension", ".txt")
    return DatasetSettings(
        caption_column=options.caption_column or section.get("caption-column", "text"),
        image_column=section.get("image-column", "file_name"),
        caption_extension=extension if extension.startswith(".") else "." + extension,
    )


def _lint_target(target: Path, options: LintOptions, registry: Registry) -> tuple[DatasetLint, list[RuleCrash]]:
    dataset, config, rules, selection = _prepare(target, options, registry)
    violations, crashes = run_rules(dataset, rules, selection, config, jobs=options.jobs)
    return DatasetLint(dataset, config, rules, selection, violations), crashes

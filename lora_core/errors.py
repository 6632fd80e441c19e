"""User-facing exceptions.

Every exception here carries a message written for the person at the terminal. The CLI turns them
into one line on stderr and exit code 2; Python callers can catch them by type.

    LorakitError
    ├── ConfigError      a config file or option is wrong (names the file and key)
    ├── DatasetError     a path cannot be read as a dataset at all (names the path)
    ├── PluginError      a required plugin is missing or a plugin registered something invalid
    │   └── PluginConflictError  two plugins claim one rule code: no lint can say which is meant
    └── OutputError      a report or a fixed file cannot be written (names the file)
"""

from __future__ import annotations

#: The public surface (docs/toolkit.md, docs/plugins.md); other names here are internal.
__all__ = [
    "ConfigError",
    "DatasetError",
    "LorakitError",
    "OutputError",
    "PluginConflictError",
    "PluginError",
]


class LorakitError(Exception):
    """Base class: the message is shown to the user as is."""


class ConfigError(LorakitError):
    """A configuration file, key, value or command-line option is invalid."""


class DatasetError(LorakitError):
    """A path cannot be opened as a dataset (missing, wrong kind of file, unreadable, no images)."""


class PluginError(LorakitError):
    """A plugin failed to load, registered something invalid, or a required plugin is absent."""


class PluginConflictError(PluginError):
    """Two plugins register the same rule code. Unlike a plugin that merely fails (it is recorded
    and skipped), this stops loading: a selection, a `noqa` or a report naming that code would mean
    one rule or the other by accident."""


class OutputError(LorakitError):
    """A report, or a file `--fix` rewrites, cannot be written (missing folder, permissions, full disk)."""

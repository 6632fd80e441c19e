"""User-facing exceptions.

Every exception here carries a message written for the person at the terminal. The CLI turns them
into one line on stderr and exit code 2; Python callers can catch them by type.

    LorakitError
    ├── ConfigError      a config file or option is wrong (names the file and key)
    ├── DatasetError     a path cannot be read as a dataset at all (names the path)
    ├── PluginError      a required plugin is missing or a plugin registered something invalid
    └── OutputError      a report or a fixed file cannot be written (names the file)
"""

from __future__ import annotations


class LorakitError(Exception):
    """Base class: the message is shown to the user as is."""


class ConfigError(LorakitError):
    """A configuration file, key, value or command-line option is invalid."""


class DatasetError(LorakitError):
    """A path cannot be opened as a dataset (missing, wrong kind of file, unreadable, no images)."""


class PluginError(LorakitError):
    """A plugin failed to load, registered something invalid, or a required plugin is absent."""


class OutputError(LorakitError):
    """A report, or a file `--fix` rewrites, cannot be written (missing folder, permissions, full disk)."""

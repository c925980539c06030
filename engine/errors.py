"""Errors whose message is meant for the user: each names the problem and the fix."""

from __future__ import annotations


class ScribeError(Exception):
    """An expected failure; the CLI prints `str(err)` as one line and exits with `exit_code`."""

    exit_code = 1


class InputError(ScribeError):
    """Bad input from the user (stdin, a file, a flag value)."""

    exit_code = 2


class ModelError(ScribeError):
    """A model that cannot be found or loaded."""


class TemplateError(ScribeError):
    """A template that cannot be found, parsed or filled."""


class ConfigError(ScribeError):
    """A malformed configuration file."""


class OutputError(ScribeError):
    """Output that cannot be written: stdout on a full disk, or a file that cannot be saved."""

"""scribe's installed version, for `scribe --version` and the servers' handshakes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def scribe_version() -> str:
    try:
        return version("scribe")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"

"""Running `scribe`: the real command in a subprocess, as a user's shell would, or `main` in the
test process (the `cli` fixture in tests/reliability/conftest.py); and reading its error line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

SCRIBE = [sys.executable, "-m", "scribe.tui.cli"]

# `cli(*args, stdin=b"...")` runs `scribe ARGS` in this process; returns (exit code, out, err).
Cli = Callable[..., tuple[int, str, str]]


def scribe(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SCRIBE, *args], input=stdin, capture_output=True, timeout=timeout, env=os.environ.copy()
    )


def one_error(err: str, *words: str) -> str:
    """The single `scribe: error:` line on stderr, holding each of `words`."""
    assert err.startswith("scribe: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err

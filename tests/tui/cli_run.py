"""Running the real `scribe` command in a subprocess, as a user's shell would."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIBE = [sys.executable, "-m", "scribe.tui.cli"]


def scribe(*args: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SCRIBE, *args], input=stdin, capture_output=True, timeout=timeout, env=os.environ.copy()
    )

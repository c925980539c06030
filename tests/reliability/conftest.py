"""Fixtures of the reliability tests."""

from __future__ import annotations

import io
import sys

import pytest

from scribe.tui.cli import main
from tests.tui.cli_run import Cli


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Runs `scribe ARGS` in this process with `stdin` bytes; returns (exit code, out, err)."""

    def run(*args: str, stdin: bytes = b"The quick brown fox") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        capsys.readouterr()  # what the test's own setup printed is not the command's
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run

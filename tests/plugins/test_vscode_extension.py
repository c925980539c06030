"""The VS Code extension: compiled with tsc from its lockfile's packages, then node's test
runner: the extension logic against a stubbed `vscode` module, and a real stdio round trip to
`scribe lsp` with a tiny model. Nothing downloads VS Code."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.lsp_harness import server_env

pytestmark = pytest.mark.slow

EXTENSION = Path(__file__).resolve().parents[2] / "plugins" / "editors" / "vscode"


def scribe_command(tmp_path: Path) -> str:
    """The `scribe` entry point of this Python, or a small wrapper that runs it."""
    installed = Path(sys.executable).parent / "scribe"
    if installed.exists():
        return str(installed)
    wrapper = tmp_path / "scribe"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scribe.tui.cli "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def test_vscode_extension_builds_and_passes_its_node_tests(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("node/npm not installed (scripts/setup.sh installs them)")
    env = server_env(tmp_path / "home")
    if not (EXTENSION / "node_modules").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=EXTENSION,
            check=True,
            timeout=600,
        )
    build = subprocess.run(
        [npm, "run", "build"], cwd=EXTENSION, capture_output=True, text=True, timeout=600
    )
    assert build.returncode == 0, build.stdout + build.stderr
    env.update(SCRIBE_TEST_COMMAND=scribe_command(tmp_path), SCRIBE_TEST_MODEL=str(tiny_model_dir))
    tests = sorted(str(p) for p in (EXTENSION / "out" / "test").glob("*.test.js"))
    assert tests, "tsc wrote no compiled tests"
    run = subprocess.run(
        [node, "--test", *tests],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "# fail 0" in report and "# skipped 0" in report, report
    passed = int(report.split("# pass ")[1].split()[0])
    assert passed >= 10, report
    assert os.path.exists(EXTENSION / "out" / "extension.js")

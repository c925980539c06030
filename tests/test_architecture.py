"""The one-way dependency rules of the project, checked on the source with ast."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_AND_SERVER = {"textual", "rich", "prompt_toolkit", "pygls", "lsprotocol"}
BARE = {"engine", "tui", "plugins"}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def test_engine_imports_no_ui_server_or_other_door() -> None:
    bad = []
    for path in python_files("engine"):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in UI_AND_SERVER or name.startswith(("scribe.tui", "scribe.plugins")):
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert bad == []


def test_no_bare_package_imports() -> None:
    bad = []
    for path in python_files("engine", "tui", "plugins", "tests", "bench", "scripts"):
        for name in imported_modules(path):
            if name.split(".")[0] in BARE:
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert bad == []


def test_engine_never_prints() -> None:
    bad = []
    for path in python_files("engine"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout",):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} sys.stdout")
    assert bad == []


def test_help_imports_no_heavy_library() -> None:
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "scribe.tui.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "complete" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "scribe.tui.common_args" in imported  # the profile really ran
    heavy = {"torch", "transformers", "textual", "pygls"} & imported
    assert heavy == set()


def test_the_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import textual\nfrom engine import models\n", encoding="utf-8")
    assert imported_modules(sample) == ["textual", "engine"]

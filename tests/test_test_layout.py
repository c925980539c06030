"""The test suite's own layout: helpers shared between test modules live in conftest.py (as
fixtures) or in helper modules (factory.py, *_harness.py, *_fakes.py...), never in a test module
that others import, and no module imports a conftest (pytest loads those itself)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).parent


def imported_names(path: Path, package: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of each module `path` imports, and of each name a `from` imports
    (`from tests.x import test_y` imports the module test_y); `package` is the module's own."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] if node.level else [])
            base = ".".join(p for p in (base, node.module or "") if p)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def is_test_module(name: str, root: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return name.split(".")[0] == root and (last.startswith("test_") or last == "conftest")


def cross_imports(root: Path) -> list[str]:
    """Each import, anywhere under `root` (the tests package), of a test module or a conftest."""
    found = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join((root.name, *path.parent.relative_to(root).parts))
        for line, name in imported_names(path, package):
            if is_test_module(name, root.name):
                found.append(f"{path.relative_to(root.parent)}:{line}: imports {name}")
    return sorted(set(found))


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    assert cross_imports(TESTS) == []


def test_the_check_catches_each_way_of_importing_a_test_module(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    (root / "engine").mkdir(parents=True)
    (root / "engine" / "test_data.py").write_text("def write_text(): ...\n")
    (root / "engine" / "test_ok.py").write_text("from tests.factory import write_text\n")
    (root / "engine" / "test_relative.py").write_text("from .test_data import write_text\n")
    (root / "engine" / "test_from_package.py").write_text("from tests.engine import test_data\n")
    (root / "engine" / "fakes.py").write_text("import tests.engine.test_data\n")
    (root / "engine" / "test_conftest.py").write_text("from tests.engine.conftest import x\n")
    assert cross_imports(root) == [
        "tests/engine/fakes.py:1: imports tests.engine.test_data",
        "tests/engine/test_conftest.py:1: imports tests.engine.conftest",
        "tests/engine/test_from_package.py:1: imports tests.engine.test_data",
        "tests/engine/test_relative.py:1: imports tests.engine.test_data",
    ]

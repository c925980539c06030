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


def cross_imports(root: Path, scan: Path | None = None) -> list[str]:
    """Each import of a test module or a conftest of the tests package `root`, anywhere under
    `scan` (a package beside it, such as bench/; `root` itself by default)."""
    scan = scan or root
    found = []
    for path in sorted(scan.rglob("*.py")):
        package = ".".join((scan.name, *path.parent.relative_to(scan).parts))
        for line, name in imported_names(path, package):
            if is_test_module(name, root.name):
                found.append(f"{path.relative_to(scan.parent)}:{line}: imports {name}")
    return sorted(set(found))


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    assert cross_imports(TESTS) == []
    assert cross_imports(TESTS, TESTS.parent / "bench") == []  # benchmarks reuse factory.py


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
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "train.py").write_text(
        "def corpus():\n    from tests.engine.test_data import write_text\n"
    )
    assert cross_imports(root, tmp_path / "bench") == [
        "bench/train.py:2: imports tests.engine.test_data"
    ]

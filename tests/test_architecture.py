"""The project's dependency rules (docs/ARCHITECTURE.md), checked on the source with ast.

Each rule says which modules a folder may not import. `violations(root)` applies every rule to a
source tree; the suite runs it on the repository, and on a small tree that breaks each rule once,
so a rule that stopped matching anything would fail here too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_LIBRARIES = ("textual", "rich", "prompt_toolkit")
SERVER_LIBRARIES = ("pygls", "lsprotocol")
FOUNDATION = ("errors", "paths", "config", "toml_file", "text_input", "version")  # engine/*.py
ROOMS = ("runtime", "prompting", "chat", "finetune", "export")


@dataclass(frozen=True)
class Rule:
    name: str
    folders: tuple[str, ...]  # where the rule applies, relative to the root (a file or a folder)
    banned: tuple[str, ...]  # module prefixes those files may not import
    allowed: tuple[str, ...] = ()  # prefixes inside `banned` that stay allowed

    def applies_to(self, relative: str) -> bool:
        return any(relative == f or relative.startswith(f.rstrip("/") + "/") for f in self.folders)


def engine(*rooms: str) -> tuple[str, ...]:
    return tuple(f"scribe.engine.{room}" for room in rooms)


RULES = [
    Rule(
        "the engine uses no door and no UI or server library",
        ("engine",),
        ("scribe.tui", "scribe.plugins", *UI_LIBRARIES, *SERVER_LIBRARIES),
    ),
    Rule(
        "the foundation (errors, paths, config, text input, version) uses no room",
        tuple(f"engine/{name}.py" for name in FOUNDATION),
        engine(*ROOMS),
    ),
    Rule(
        "the file helpers use no room",
        ("engine/files",),
        engine(*ROOMS),
    ),
    Rule(
        "engine/runtime/gpt2 imports nothing from the rest of scribe.engine.runtime",
        ("engine/runtime/gpt2",),
        ("scribe.engine.runtime",),
        ("scribe.engine.runtime.gpt2",),
    ),
    Rule(
        "the runtime uses no other room",
        ("engine/runtime",),
        engine("prompting", "chat", "finetune", "export"),
    ),
    Rule("prompting uses only the runtime", ("engine/prompting",),
         engine("chat", "finetune", "export")),
    Rule("chat uses no fine-tuning or export", ("engine/chat",), engine("finetune", "export")),
    Rule("fine-tuning uses no chat or export", ("engine/finetune",), engine("chat", "export")),
    Rule("export uses no chat or fine-tuning", ("engine/export",), engine("chat", "finetune")),
    Rule("the servers use no UI", ("plugins",), ("scribe.tui", *UI_LIBRARIES)),
    Rule("imports name the installed package",
         ("engine", "tui", "plugins", "tests", "bench", "scripts"), ("engine", "tui", "plugins")),
]  # fmt: skip


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports; `from scribe.engine import paths` counts as
    scribe.engine.paths, since the name may be a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def banned_by(name: str, prefixes: tuple[str, ...], allowed: tuple[str, ...] = ()) -> bool:
    def under(options: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in options)

    return under(prefixes) and not under(allowed)


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".venv/", "build/")) or "/node_modules/" in relative:
            continue
        for rule in RULES:
            if not rule.applies_to(relative):
                continue
            for name in imported_modules(path):
                if banned_by(name, rule.banned, rule.allowed):
                    found.append(f"{relative}: imports {name} ({rule.name})")
    return found


def test_the_tree_keeps_every_dependency_rule() -> None:
    assert violations(ROOT) == []


def test_each_rule_catches_a_file_that_breaks_it(tmp_path: Path) -> None:
    breaking = {
        "engine/chat/uses_ui.py": "import textual\n",
        "engine/paths.py": "from scribe.engine.runtime import models\n",
        "engine/runtime/uses_chat.py": "from scribe.engine.chat.session import ChatSession\n",
        "engine/files/uses_runtime.py": "from scribe.engine.runtime import models\n",
        "engine/runtime/gpt2/uses_runtime.py": "from scribe.engine.runtime.models import load\n",
        "engine/prompting/uses_finetune.py": "import scribe.engine.finetune.data\n",
        "engine/chat/uses_finetune.py": "from scribe.engine import finetune\n",
        "engine/finetune/uses_chat.py": "from scribe.engine.chat import conversations\n",
        "engine/export/uses_finetune.py": "from scribe.engine.finetune.card import write_card\n",
        "plugins/servers/uses_tui.py": "from scribe.tui.chat.app import ChatApp\n",
        "tests/bare.py": "from engine.runtime import models\n",
    }
    for relative, source in breaking.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(source, encoding="utf-8")
    found = violations(tmp_path)
    for rule in RULES:
        assert any(f"({rule.name})" in line for line in found), rule.name
    # And a file that keeps the rules is not reported.
    (tmp_path / "engine/chat/fine.py").write_text("from scribe.engine.runtime import models\n")
    assert not [line for line in violations(tmp_path) if line.startswith("engine/chat/fine.py")]
    # gpt2/ may import its own modules.
    own = tmp_path / "engine/runtime/gpt2/own.py"
    own.write_text("from scribe.engine.runtime.gpt2 import quantize\n", encoding="utf-8")
    assert not [line for line in violations(tmp_path) if line.startswith("engine/runtime/gpt2/own")]


def test_engine_never_prints() -> None:
    bad = []
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout",):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} sys.stdout")
    assert bad == []


def test_no_module_is_over_400_lines() -> None:
    long = []
    for folder in ("engine", "tui", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > 400:
                long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert long == []


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


def test_the_import_reader_sees_both_forms(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import textual\nfrom engine import models\n", encoding="utf-8")
    assert imported_modules(sample) == ["textual", "engine", "engine.models"]

"""`scribe log`: list, search (-q) and print as Markdown (--md), on a real database file."""

from __future__ import annotations

from pathlib import Path

from scribe.engine.chat.conversations import ConversationStore
from scribe.tui.cli import main


def seed() -> tuple[int, int]:
    store = ConversationStore()
    first = store.create_conversation(model="/models/tiny-model", system="Be brief.")
    u = store.add_message(first, None, "user", "Describe a lighthouse at night")
    store.add_message(first, u, "assistant", "A white tower, its lamp sweeping the dark sea.")
    old = store.add_message(first, u, "assistant", "The beam turns.", status="stopped")
    second = store.create_conversation(model="gpt2", template="summarize")
    store.add_message(second, None, "user", "Summarize: the harvest came early this year")
    store.close()
    assert old
    return first, second


def test_lists_newest_first(capsys) -> None:  # type: ignore[no-untyped-def]
    first, second = seed()
    assert main(["log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "updated", "msgs", "model", "title"]
    assert lines[1].split()[0] == str(second) and "Summarize: the harvest" in lines[1]
    assert lines[2].split()[0] == str(first) and "tiny-model" in lines[2]
    assert " 3 " in lines[2] and "Describe a lighthouse at night" in lines[2]
    assert "conversations.db" in lines[-1]


def test_search_finds_words_in_any_message(capsys) -> None:  # type: ignore[no-untyped-def]
    first, _ = seed()
    assert main(["log", "-q", "lamp sweeping"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == str(first)
    assert "[lamp] [sweeping]" in out
    assert main(["log", "-q", "volcano"]) == 1
    assert "no conversation mentions 'volcano'" in capsys.readouterr().out


def test_markdown_export_of_the_current_branch(capsys) -> None:  # type: ignore[no-untyped-def]
    first, _ = seed()
    assert main(["log", "--md", str(first)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Describe a lighthouse at night\n")
    assert "model `/models/tiny-model`" in out and "> System: Be brief." in out
    assert "## You\n\nDescribe a lighthouse at night" in out
    assert "## Assistant (stopped)\n\nThe beam turns." in out
    assert "A white tower" not in out  # the other branch is not the one being shown


def test_errors_are_one_clear_line(scribe_home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["log"]) == 0
    assert "no saved conversations yet" in capsys.readouterr().out
    seed()
    assert main(["log", "--md", "99"]) == 1
    err = capsys.readouterr().err
    assert err == "scribe: error: no conversation with id 99; `scribe log` lists the saved ones\n"
    db = scribe_home / "data" / "conversations.db"
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    db.write_bytes(b"garbage " * 512)
    assert main(["log"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"scribe: error: {db} is not a readable scribe database")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert db.read_bytes() == b"garbage " * 512

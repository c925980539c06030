"""The conversation store against hostile or unlucky files, on real SQLite files and through the
real `scribe log` command: private modes, another program's database, bytes that are not SQLite,
parent loops and malformed rows. Nothing here may lose data, hang or show a traceback."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from scribe.engine.chat.conversations import ConversationStore, default_path
from scribe.engine.chat.session import ChatSession
from scribe.engine.chat.storage import ForeignDatabaseError, StorageError
from scribe.tui.cli import main
from tests.tui.cli_run import scribe


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sidecars(db: Path) -> list[Path]:
    return [Path(f"{db}{end}") for end in ("-wal", "-shm")]


def seed_one(path: Path | None = None) -> tuple[ConversationStore, int, list[int]]:
    """A conversation of four turns; the store stays open."""
    store = ConversationStore(path)
    cid = store.create_conversation(model="tiny")
    ids: list[int] = []
    for n, role in enumerate(["user", "assistant", "user", "assistant"]):
        ids.append(store.add_message(cid, ids[-1] if ids else None, role, f"turn {n} text"))
    return store, cid, ids


# -- 1. privacy ---------------------------------------------------------------------------------
def test_new_data_dir_and_database_files_are_owner_only(scribe_home: Path) -> None:
    store, _, _ = seed_one()
    data = scribe_home / "data"
    assert mode(data) == 0o700
    db = data / "conversations.db"
    wal, shm = sidecars(db)
    assert wal.exists() and shm.exists()  # open, in WAL mode
    assert [mode(p) for p in (db, wal, shm)] == [0o600] * 3
    store.close()


def test_loose_modes_made_before_are_tightened_on_open(scribe_home: Path) -> None:
    store, cid, _ = seed_one()
    store.close()
    db = default_path()
    db.parent.chmod(0o755)
    db.chmod(0o644)
    again = ConversationStore()
    assert mode(db.parent) == 0o700
    assert mode(db) == 0o600
    assert all(mode(p) == 0o600 for p in sidecars(db) if p.exists())
    assert len(again.thread(cid)) == 4  # nothing lost on the way
    again.close()


# -- 2. a database that is not scribe's -------------------------------------------------------
def another_programs_db(path: Path, tables: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(tables)
    db.commit()
    db.close()
    return path.read_bytes()


FOREIGN_SCHEMAS = {
    "notes app": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"
    "INSERT INTO notes (body) VALUES ('my only copy');",
    "same table names": "CREATE TABLE conversations (id INTEGER PRIMARY KEY, who TEXT);"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, text TEXT); PRAGMA user_version = 1;",
    "big user_version": "CREATE TABLE t (x); PRAGMA user_version = 77;",
}


@pytest.mark.parametrize("schema", FOREIGN_SCHEMAS.values(), ids=FOREIGN_SCHEMAS.keys())
def test_another_programs_database_is_refused_untouched(
    scribe_home: Path,
    schema: str,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    db = default_path()
    before = another_programs_db(db, schema)
    with pytest.raises(ForeignDatabaseError) as info:
        ConversationStore()
    message = str(info.value)
    assert str(db) in message and "not a scribe database" in message and "mv " in message
    assert "\n" not in message
    # The real command: one line, non-zero, and the file exactly as it was.
    assert main(["log"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"scribe: error: {db} is not a scribe database")
    assert err.count("\n") == 1
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["conversations.db"]  # no -wal/-shm
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no WAL switch
    check.close()


@pytest.mark.slow
def test_garbage_bytes_are_one_line_through_the_real_command(scribe_home: Path) -> None:
    db = default_path()
    db.parent.mkdir(parents=True)
    junk = bytes(range(256)) * 64
    db.write_bytes(junk)
    for args in (["log"], ["log", "--md", "1"], ["log", "-q", "anything"]):
        out = scribe(*args)
        assert out.returncode == 1, out
        err = out.stderr.decode()
        assert err.startswith(f"scribe: error: {db} is not a readable scribe database"), err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert db.read_bytes() == junk
    assert sorted(p.name for p in db.parent.iterdir()) == ["conversations.db"]


def test_an_empty_file_or_one_without_tables_becomes_a_new_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    ConversationStore(empty).close()
    no_tables = tmp_path / "none.db"
    sqlite3.connect(no_tables).close()
    store = ConversationStore(no_tables)
    assert store.schema_version == 2
    store.close()


# -- 3. corrupt rows ------------------------------------------------------------------------------
def test_a_parent_loop_never_hangs_export_or_resume(scribe_home: Path) -> None:
    store, cid, ids = seed_one()
    # The first turn's parent is the third: ids[3] -> 2 -> 1 -> 0 -> 2 -> ...
    store.db.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (ids[2], ids[0]))
    read = store.read_thread(cid)
    assert [m.id for m in read.messages] == ids
    assert read.problems == [f"message {ids[0]}'s parent {ids[2]} makes a loop"]
    assert store.newest_leaf(ids[0]) in ids  # walking down the loop ends too
    session = ChatSession(store)
    session.open(cid)
    assert [m.content for m in session.thread] == [f"turn {n} text" for n in range(4)]
    assert "makes a loop" in session.warning
    store.close()
    # The real command in a child process (a hang would be this timeout, not a stuck suite).
    out = scribe("log", "--md", str(cid), timeout=60)
    assert out.returncode == 1
    text = out.stdout.decode()
    assert "## You\n\nturn 0 text" in text and "## Assistant\n\nturn 3 text" in text
    err = out.stderr.decode()
    assert err.startswith(f"scribe: warning: conversation {cid} is damaged (message")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_two_message_loop_and_a_missing_parent_or_head(scribe_home: Path) -> None:
    store, cid, ids = seed_one()
    store.db.execute("PRAGMA foreign_keys = OFF")  # as another tool would write
    store.db.execute("UPDATE messages SET parent_id = ? WHERE id = ?", (ids[3], ids[2]))
    read = store.read_thread(cid)
    assert [m.id for m in read.messages] == [ids[2], ids[3]]
    assert "makes a loop" in read.problems[0]
    store.db.execute("UPDATE messages SET parent_id = 999 WHERE id = ?", (ids[2],))
    read = store.read_thread(cid)
    assert [m.id for m in read.messages] == [ids[2], ids[3]]
    assert read.problems == [f"message {ids[2]}'s parent 999 is missing"]
    store.db.execute("UPDATE conversations SET head_id = 12345 WHERE id = ?", (cid,))
    read = store.read_thread(cid)
    assert read.problems[0] == "its head message 12345 is missing"
    assert read.messages[-1].id == ids[3]  # the newest message stands in for the head
    store.close()


def break_not_null(path: Path) -> None:
    """Let NULL into messages.content, as a careless tool (or a hand edit) could."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA writable_schema = ON")
    db.execute(
        "UPDATE sqlite_master SET sql = replace(sql, 'content TEXT NOT NULL', 'content TEXT') "
        "WHERE name = 'messages'"
    )
    db.commit()
    db.close()


def test_malformed_rows_are_reported_not_crashed_on(scribe_home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    store, cid, ids = seed_one()
    store.close()
    break_not_null(default_path())
    db = sqlite3.connect(default_path())
    db.execute("UPDATE messages SET content = NULL WHERE id = ?", (ids[0],))
    # A TEXT column turns numbers into text; a BLOB stays one.
    db.execute("UPDATE messages SET content = x'3432', meta = 'not json' WHERE id = ?", (ids[1],))
    db.execute("UPDATE messages SET content = CAST(x'6361ff' AS TEXT) WHERE id = ?", (ids[2],))
    db.execute("UPDATE messages SET created = 'yesterday' WHERE id = ?", (ids[3],))
    db.execute(
        "UPDATE conversations SET options = '[1, 2]', updated = 'soon', title = x'37' WHERE id = ?",
        (cid,),
    )
    db.commit()
    db.close()
    store = ConversationStore()
    read = store.read_thread(cid)
    assert [m.content for m in read.messages] == ["", "42", "ca\ufffd", "turn 3 text"]
    for expected in (
        f"message {ids[0]} has NULL content",
        f"message {ids[1]} has non-text (bytes) content",
        f"message {ids[1]} has malformed (not a JSON object) meta",
        f"message {ids[3]} has non-numeric created",
        f"conversation {cid} has malformed (not a JSON object) options",
        f"conversation {cid} has non-numeric updated",
        f"conversation {cid} has non-text (bytes) title",
    ):
        assert expected in read.problems
    store.close()
    assert main(["log"]) == 0  # the list shows the damaged conversation
    listed = capsys.readouterr().out.splitlines()[1]
    assert listed.startswith(f"{cid:>5}  ") and listed.endswith("   4  tiny              7")
    assert main(["log", "--md", str(cid)]) == 1
    out = capsys.readouterr()
    assert "## You\n\n*(empty)*" in out.out and "## Assistant\n\n42" in out.out
    assert out.err.startswith("scribe: warning: ") and out.err.count("\n") == 1
    assert main(["log", "-q", "turn"]) == 0


def test_ids_beyond_sqlite_integers_are_not_found_not_crashes(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    for bad in (2**63, 10**30, -(2**70)):
        with pytest.raises(StorageError, match=f"no conversation with id {bad}"):
            store.get_conversation(bad)
    assert store.list_conversations(10**30) == []
    store.close()


def test_lone_surrogates_are_stored_as_replacement_characters(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation(system="be \udcff brief", options={"stop": ["\udce9"]})
    store.add_message(cid, None, "user", "caf\udce9 au lait")
    record = store.get_conversation(cid)
    assert record.system == "be \ufffd brief" and record.options == {"stop": ["\ufffd"]}
    assert record.title == "caf\ufffd au lait"
    assert [h.conversation_id for h in store.search("caf\udce9")] == [cid]
    store.close()

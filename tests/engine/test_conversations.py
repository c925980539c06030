"""The conversation store on real SQLite files: schema, branches, search, and the failure cases
(corrupt file, read-only data dir, a database locked by another scribe)."""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scribe.engine.chat import conversations
from scribe.engine.chat.conversations import ConversationStore, default_path
from scribe.engine.chat.schema import MIGRATIONS, SCHEMA_VERSION
from scribe.engine.chat.storage import StorageError


def test_new_database_is_wal_with_current_schema(scribe_home: Path) -> None:
    store = ConversationStore()
    assert store.path == scribe_home / "data" / "conversations.db"
    assert store.schema_version == SCHEMA_VERSION == 2
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_messages_branches_and_head(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    cid = store.create_conversation(model="m", system="Be brief.", options={"temperature": 0.2})
    u1 = store.add_message(cid, None, "user", "Write a haiku about the sea")
    a1 = store.add_message(cid, u1, "assistant", "Waves fold into foam")
    a2 = store.add_message(cid, u1, "assistant", "Salt wind, grey water", status="stopped")
    record = store.get_conversation(cid)
    assert record.head_id == a2
    assert record.title == "Write a haiku about the sea"
    assert record.options == {"temperature": 0.2} and record.system == "Be brief."
    assert [m.id for m in store.thread(cid)] == [u1, a2]
    assert [m.id for m in store.thread(cid, a1)] == [u1, a1]
    assert [m.id for m in store.siblings(a1)] == [a1, a2]
    assert store.thread(cid)[-1].status == "stopped"
    u2 = store.add_message(cid, a1, "user", "Another")
    assert store.newest_leaf(a1) == u2
    store.close()
    # Everything is on disk: a fresh connection sees it.
    again = ConversationStore(tmp_path / "c.db")
    assert [m.content for m in again.thread(cid)] == [
        "Write a haiku about the sea",
        "Waves fold into foam",
        "Another",
    ]
    assert again.get_conversation(cid).message_count == 4


def test_list_last_and_search(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    first = store.create_conversation()
    store.add_message(first, None, "user", "Tell me about lighthouses")
    second = store.create_conversation()
    m = store.add_message(second, None, "user", "Draft an opening line")
    store.add_message(second, m, "assistant", "The keeper's lamp burned all night.")
    empty = store.create_conversation()  # no messages: not listed
    listed = [c.id for c in store.list_conversations()]
    assert listed == [second, first] and empty not in listed
    assert store.last_conversation().id == second
    hits = store.search("keeper lamp")
    assert [h.conversation_id for h in hits] == [second]
    # Plain text with the matches' spans: no markup that a renderer could read and drop.
    assert hits[0].snippet == "The keeper's lamp burned all night."
    assert [hits[0].snippet[a:b] for a, b in hits[0].marks] == ["keeper", "lamp"]
    assert hits[0].bracketed() == "The [keeper]'s [lamp] burned all night."
    assert [h.conversation_id for h in store.search("lighthouses")] == [first]
    assert store.search("odd \"quote's (syntax*") == []  # user text is never FTS syntax
    assert store.search("   ") == []


def test_missing_conversation_is_a_clear_error(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.db")
    with pytest.raises(StorageError, match="no conversation with id 42; `scribe log`"):
        store.get_conversation(42)


def test_migrates_a_version_1_database_and_indexes_old_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO conversations (id, title, created, updated, head_id) VALUES (1,'t',0,0,1)"
    )
    db.execute(
        "INSERT INTO messages (id, conversation_id, role, content, created) "
        "VALUES (1, 1, 'user', 'an albatross overhead', 0)"
    )
    db.commit()
    db.close()
    store = ConversationStore(path)
    assert store.schema_version == 2
    assert [h.conversation_id for h in store.search("albatross")] == [1]


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="written by a newer scribe"):
        ConversationStore(path)
    assert path.read_bytes() == before


def test_corrupt_file_is_reported_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    junk = b"this is not sqlite, it is someone's notes\n" * 100
    path.write_bytes(junk)
    with pytest.raises(StorageError) as info:
        ConversationStore(path)
    message = str(info.value)
    assert str(path) in message and "not a readable scribe database" in message
    assert "mv " in message  # the fix
    assert path.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversations.db"]


def test_damaged_pages_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ConversationStore(path)
    cid = store.create_conversation()
    store.add_message(cid, None, "user", "x" * 5000)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # garble the second page
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="not a readable scribe database|malformed"):
        store = ConversationStore(path)
        store.list_conversations()
        store.thread(cid)


READ_ONLY_CHECK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from scribe.engine.chat.conversations import ConversationStore
    from scribe.engine.chat.storage import StorageError
    try:
        ConversationStore(Path({path!r}))
    except StorageError as err:
        print("ERROR", err)
    else:
        print("OPENED")
    """
)


def _drop_permission_override() -> None:
    """In the child, before exec: root without CAP_DAC_OVERRIDE/READ_SEARCH obeys the mode bits."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _open_without_write_access(folder: Path, db: Path) -> str:
    """Open the store in a child process while `folder` is read-only (mode 0555)."""
    folder.chmod(0o555)
    try:
        code = READ_ONLY_CHECK.format(path=str(db))
        preexec = _drop_permission_override if os.geteuid() == 0 else None
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=preexec
        )
        return out.stdout + out.stderr
    finally:
        folder.chmod(0o755)


def test_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = ConversationStore(data / "conversations.db")
    cid = store.create_conversation()
    store.add_message(cid, None, "user", "kept safe")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    before = (data / "conversations.db").read_bytes()
    out = _open_without_write_access(data, data / "conversations.db")
    assert out.startswith("ERROR cannot write"), out
    assert "read-only" in out and "SCRIBE_HOME" in out and str(data) in out
    assert (data / "conversations.db").read_bytes() == before
    again = ConversationStore(data / "conversations.db")
    assert [m.content for m in again.thread(cid)] == ["kept safe"]
    # A data dir that cannot even be created.
    out = _open_without_write_access(tmp_path, tmp_path / "new" / "conversations.db")
    assert out.startswith("ERROR cannot write") and "read-only" in out, out


HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from scribe.engine.chat.conversations import ConversationStore
    store = ConversationStore(Path({path!r}))
    store.db.execute("BEGIN EXCLUSIVE")
    store.db.execute("INSERT INTO conversations (created, updated) VALUES (0, 0)")
    print("locked", flush=True)
    sys.stdin.readline()
    store.db.execute("ROLLBACK")
    """
)


def test_locked_by_another_scribe(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    store = ConversationStore(path, timeout=0.2)
    cid = store.create_conversation()
    first = store.add_message(cid, None, "user", "saved before the lock")
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK.format(path=str(path))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "locked"
        with pytest.raises(StorageError) as info:
            store.add_message(cid, first, "assistant", "written while locked")
        assert "locked by another scribe" in str(info.value)
        assert str(path) in str(info.value)
        # Reading still works while the other one writes (WAL).
        assert [m.content for m in store.thread(cid)] == ["saved before the lock"]
        with pytest.raises(StorageError, match="locked"):
            ConversationStore(path, timeout=0.2).create_conversation()
    finally:
        assert other.stdin is not None
        other.stdin.write("\n")
        other.stdin.close()
        other.wait(30)
    again = store.add_message(cid, first, "assistant", "written after the lock")
    assert [m.content for m in store.thread(cid, again)] == [
        "saved before the lock",
        "written after the lock",
    ]
    assert len(store.messages(cid)) == 2


def test_default_path_follows_scribe_home(scribe_home: Path) -> None:
    assert default_path() == scribe_home / "data" / conversations.DB_NAME

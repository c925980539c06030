"""The database schema: its migrations, and the read-only check that a file is scribe's."""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from pathlib import Path

from scribe.engine.chat.storage import ForeignDatabaseError, StorageError, storage_error

# Migration N brings a database from schema version N-1 to N. Append, never edit a shipped one.
MIGRATIONS: list[str] = [
    # 1: conversations and their messages; a message's parent makes branches possible.
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL,
        updated REAL NOT NULL,
        model TEXT,
        system TEXT,
        template TEXT,
        template_values TEXT NOT NULL DEFAULT '{}',
        options TEXT NOT NULL DEFAULT '{}',
        head_id INTEGER
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        parent_id INTEGER REFERENCES messages(id),
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'complete',
        meta TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE INDEX messages_by_parent ON messages(parent_id);
    CREATE INDEX conversations_by_updated ON conversations(updated);
    """,
    # 2: full-text search over message text, kept in step by triggers.
    """
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content='messages', content_rowid='id'
    );
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END;
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END;
    INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
# What scribe's own tables must have, by the schema version that added them.
SCHEMA_TABLES: dict[str, tuple[int, set[str]]] = {
    "conversations": (
        1,
        {"id", "title", "created", "updated", "model", "system", "template", "head_id"}
        | {"template_values", "options"},
    ),
    "messages": (
        1,
        {"id", "conversation_id", "parent_id", "role", "content", "status", "meta", "created"},
    ),
    "messages_fts": (2, set()),
}


def user_version(db: sqlite3.Connection) -> int:
    """The schema version a database is at (0: none yet)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def check_existing(path: Path) -> None:
    """Refuse, reading only, a file that is not scribe's database; nothing is written to it.

    No file, an empty one, or one without tables is a new database. Tables without scribe's
    schema are another program's (ForeignDatabaseError); a schema newer than this scribe knows
    is refused too, and bytes that are not SQLite at all are reported by `storage_error`."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        db = sqlite3.connect(read_only_uri(path), uri=True)
        try:
            # One read transaction: the version and the tables from the same snapshot, even
            # while another scribe commits the first migration between the two reads.
            db.execute("BEGIN")
            version = user_version(db)
            names = [
                str(row[0])
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite%' ORDER BY name"
                )
            ]
            columns = {
                name: {str(row[1]) for row in db.execute(f'PRAGMA table_info("{name}")')}
                for name in SCHEMA_TABLES
                if name in names
            }
            db.execute("ROLLBACK")
        finally:
            db.close()
    except (sqlite3.Error, OSError) as err:
        raise storage_error(path, err) from None
    if names and not _is_scribe_schema(version, columns):
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise ForeignDatabaseError(
            f"{path} is not a scribe database (it holds another program's tables: {shown}); "
            f"scribe left it untouched: move it aside (mv {path} {path}.bak) or point "
            "SCRIBE_HOME at another folder"
        )
    _refuse_newer(path, version)


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Set up an open connection (WAL, foreign keys) and migrate it to SCHEMA_VERSION.

    Several scribes may open a new data dir at once: the version is read again under the write
    lock (BEGIN IMMEDIATE waits for the other's migration), so each migration runs once."""
    version = user_version(db)
    _refuse_newer(path, version)  # written since check_existing, by a newer scribe
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit survives a crash of scribe
    _use_wal(db)
    if version >= SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(db)  # another scribe may have migrated while we waited
        _refuse_newer(path, version)
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _use_wal(db: sqlite3.Connection, wait_s: float = 10.0) -> None:
    """Switch to WAL. The switch needs the file to itself and SQLite does not wait for that (no
    busy handler), so a second scribe starting at the same moment retries for a while."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _statements(script: str) -> list[str]:
    """A migration's statements one by one (a trigger's body is part of its statement), so that
    they run inside our transaction: executescript would commit it first."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def open_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """Scribe's database as it is, with no write of any kind (no migration, no WAL switch): for
    a reader whose data dir cannot be written."""
    check_existing(path)
    try:
        db = sqlite3.connect(
            read_only_uri(path),
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        version = user_version(db)
    except sqlite3.Error as err:
        raise storage_error(path, err) from None
    if version < SCHEMA_VERSION:
        db.close()
        raise StorageError(
            f"{path} is from an older scribe (schema {version}) and cannot be upgraded where it "
            "is read-only; make its folder writable and run scribe once"
        )
    return db


def _refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path} was written by a newer scribe (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade scribe to open it"
        )


def _is_scribe_schema(version: int, columns: dict[str, set[str]]) -> bool:
    """Every table (and column) scribe's migrations up to `version` create is there. Version 0
    with tables is never scribe's: a migration sets the version with the tables it creates."""
    if version < 1:
        return False
    return all(
        name in columns and needed <= columns[name]
        for name, (since, needed) in SCHEMA_TABLES.items()
        if since <= version
    )


def read_only_uri(path: Path) -> str:
    """A URI that opens `path` without any write. `immutable` (no locks, no -wal/-shm files made)
    only where the folder cannot be written and no WAL content is beside the file: elsewhere
    another scribe may be writing it right now (a first start at the same moment), and only
    SQLite's locks give a consistent read. A database in rollback mode gets no files either way."""
    wal = Path(f"{path}-wal")
    quiet = not wal.exists() or wal.stat().st_size == 0
    immutable = quiet and not os.access(path.parent, os.W_OK)
    quoted = urllib.parse.quote(str(path.absolute()))
    return f"file:{quoted}?mode=ro" + ("&immutable=1" if immutable else "")

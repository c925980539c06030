"""Saved conversations: one SQLite file in the data dir (DESIGN.md section 7).

WAL journal, a schema version with forward-only migrations, messages linked by parent id (so a
regenerated reply or an edited turn is a sibling branch, and nothing is ever overwritten), and an
FTS5 index for search. Every write is one short transaction, committed as each message completes.
Failures become a `StorageError` that names the file, the problem and the fix; scribe never deletes,
truncates or rewrites a database it cannot read.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import ScribeError

DB_NAME = "conversations.db"
LOCK_TIMEOUT_S = 5.0  # how long a write waits for another scribe's transaction to finish

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


class StorageError(ScribeError):
    """The conversation database cannot be opened, read or written."""


@dataclass
class ConversationRecord:
    id: int
    title: str
    created: float
    updated: float
    model: str | None = None
    system: str | None = None  # None: the chat format's default system prompt
    template: str | None = None
    template_values: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # option overrides (/set, flags)
    head_id: int | None = None  # the newest message of the branch being shown
    message_count: int = 0


@dataclass
class MessageRecord:
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    meta: dict[str, Any]
    created: float


@dataclass
class SearchHit:
    conversation_id: int
    message_id: int
    title: str
    snippet: str
    updated: float


def default_path() -> Path:
    return paths.data_dir() / DB_NAME


def _classify(path: Path, err: Exception) -> StorageError:
    """One line naming the file, what is wrong and what to do."""
    text = str(err)
    low = text.lower()
    if isinstance(err, PermissionError) or "readonly" in low or "read-only" in low:
        return StorageError(
            f"cannot write {path}: the data dir {path.parent} is read-only ({text}); make it "
            "writable, or point SCRIBE_HOME at a writable folder"
        )
    if "locked" in low or "busy" in low:
        return StorageError(
            f"{path} is locked by another scribe (or another program) holding a write; "
            "finish or close that one and try again (nothing was overwritten)"
        )
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return StorageError(
            f"{path} is not a readable scribe database ({text}); scribe left it untouched: "
            f"move it aside (mv {path} {path}.bak) and scribe starts a new one"
        )
    if "unable to open" in low:
        if not os.access(path.parent, os.W_OK):
            return _classify(path, PermissionError(text))
        return StorageError(f"cannot open {path} ({text}); check the folder and its permissions")
    return StorageError(f"{path}: database error ({text})")


class ConversationStore:
    """The conversations database. Not shared between threads: open one per thread."""

    def __init__(self, path: Path | None = None, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = path or default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise _classify(self.path, PermissionError(str(err))) from None
        if not os.access(self.path.parent, os.W_OK):
            raise _classify(self.path, PermissionError("no write permission"))
        try:
            self.db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise _classify(self.path, err) from None
        self.db.row_factory = sqlite3.Row
        try:
            self._setup()
        except sqlite3.Error as err:
            self.db.close()
            raise _classify(self.path, err) from None

    # -- schema ---------------------------------------------------------------------------
    def _setup(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} was written by a newer scribe (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade scribe to open it"
            )
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit survives a crash of scribe
        if self.db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self.db.execute("PRAGMA journal_mode = WAL")
        self._migrate(version)

    def _migrate(self, version: int) -> None:
        for number in range(version + 1, SCHEMA_VERSION + 1):
            script = MIGRATIONS[number - 1]
            try:
                self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                )
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; a lock or I/O failure rolls back and becomes a StorageError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise _classify(self.path, err) from None
        try:
            yield self.db
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise _classify(self.path, err) from None
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise _classify(self.path, err) from None

    # -- conversations --------------------------------------------------------------------
    def create_conversation(
        self,
        model: str | None = None,
        system: str | None = None,
        template: str | None = None,
        template_values: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
    ) -> int:
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (created, updated, model, system, template, "
                "template_values, options) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    now,
                    model,
                    system,
                    template,
                    json.dumps(template_values or {}),
                    json.dumps(options or {}),
                ),
            )
            return int(cursor.lastrowid or 0)

    def update_conversation(self, conversation_id: int, **changes: Any) -> None:
        """Change settings: model, system, template, template_values, options, title, head_id."""
        allowed = {"model", "system", "template", "template_values", "options", "title", "head_id"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown conversation fields {sorted(unknown)}")
        if not changes:
            return
        values = [
            json.dumps(v) if k in ("template_values", "options") else v for k, v in changes.items()
        ]
        assignments = ", ".join(f"{key} = ?" for key in changes)
        with self._write() as db:
            db.execute(
                f"UPDATE conversations SET {assignments}, updated = ? WHERE id = ?",
                (*values, time.time(), conversation_id),
            )

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        rows = self._read(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.id = ?",
            (conversation_id,),
        )
        if not rows:
            raise StorageError(
                f"no conversation with id {conversation_id}; `scribe log` lists the saved ones"
            )
        return _conversation(rows[0])

    def last_conversation(self) -> ConversationRecord | None:
        rows = self._read(
            "SELECT id FROM conversations WHERE head_id IS NOT NULL ORDER BY updated DESC, id DESC "
            "LIMIT 1"
        )
        return self.get_conversation(int(rows[0]["id"])) if rows else None

    def list_conversations(self, limit: int = 50) -> list[ConversationRecord]:
        rows = self._read(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.head_id IS NOT NULL "
            "ORDER BY c.updated DESC, c.id DESC LIMIT ?",
            (limit,),
        )
        return [_conversation(row) for row in rows]

    # -- messages -------------------------------------------------------------------------
    def add_message(
        self,
        conversation_id: int,
        parent_id: int | None,
        role: str,
        content: str,
        status: str = "complete",
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Save one finished message and make it the conversation's head, in one transaction."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO messages (conversation_id, parent_id, role, content, status, meta, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, parent_id, role, content, status, json.dumps(meta or {}), now),
            )
            message_id = int(cursor.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET head_id = ?, updated = ?, "
                "title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
                (message_id, now, role, make_title(content), conversation_id),
            )
            return message_id

    def set_head(self, conversation_id: int, message_id: int) -> None:
        self.update_conversation(conversation_id, head_id=message_id)

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """Every message of a conversation, all branches, oldest first."""
        rows = self._read(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [_message(row) for row in rows]

    def thread(self, conversation_id: int, head_id: int | None = None) -> list[MessageRecord]:
        """The branch that ends at `head_id` (default: the conversation's head), root first."""
        if head_id is None:
            head_id = self.get_conversation(conversation_id).head_id
        by_id = {m.id: m for m in self.messages(conversation_id)}
        chain: list[MessageRecord] = []
        current = by_id.get(head_id) if head_id is not None else None
        while current is not None:
            chain.append(current)
            current = by_id.get(current.parent_id) if current.parent_id is not None else None
        return chain[::-1]

    def siblings(self, message_id: int) -> list[MessageRecord]:
        """The message and its alternatives (same parent, same role), oldest first."""
        rows = self._read(
            "SELECT s.* FROM messages s JOIN messages m ON m.id = ? "
            "WHERE s.conversation_id = m.conversation_id AND s.role = m.role "
            "AND s.parent_id IS m.parent_id ORDER BY s.id",
            (message_id,),
        )
        return [_message(row) for row in rows]

    def newest_leaf(self, message_id: int) -> int:
        """The newest message at the end of the branches under `message_id` (itself if none)."""
        current = message_id
        while True:
            rows = self._read(
                "SELECT id FROM messages WHERE parent_id = ? ORDER BY id DESC LIMIT 1", (current,)
            )
            if not rows:
                return current
            current = int(rows[0]["id"])

    # -- search ---------------------------------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Messages matching every word of `text` (FTS5), best first, one hit per conversation."""
        query = fts_query(text)
        if not query:
            return []
        rows = self._read(
            "SELECT m.conversation_id, m.id, c.title, c.updated, "
            "snippet(messages_fts, 0, '[', ']', '…', 12) AS snip "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? ORDER BY rank",
            (query,),
        )
        hits: dict[int, SearchHit] = {}
        for row in rows:
            conversation_id = int(row["conversation_id"])
            if conversation_id not in hits:
                hits[conversation_id] = SearchHit(
                    conversation_id=conversation_id,
                    message_id=int(row["id"]),
                    title=row["title"],
                    snippet=" ".join(str(row["snip"]).split()),
                    updated=float(row["updated"]),
                )
            if len(hits) >= limit:
                break
        return list(hits.values())


def fts_query(text: str) -> str:
    """Each word quoted, so punctuation in the user's text is never FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words if w.strip('"'))


def make_title(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    return ConversationRecord(
        id=int(row["id"]),
        title=row["title"],
        created=float(row["created"]),
        updated=float(row["updated"]),
        model=row["model"],
        system=row["system"],
        template=row["template"],
        template_values=json.loads(row["template_values"] or "{}"),
        options=json.loads(row["options"] or "{}"),
        head_id=row["head_id"],
        message_count=int(row["n"]) if "n" in row.keys() else 0,
    )


def _message(row: sqlite3.Row) -> MessageRecord:
    return MessageRecord(
        id=int(row["id"]),
        conversation_id=int(row["conversation_id"]),
        parent_id=row["parent_id"],
        role=row["role"],
        content=row["content"],
        status=row["status"],
        meta=json.loads(row["meta"] or "{}"),
        created=float(row["created"]),
    )

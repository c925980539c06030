"""Saved conversations: one SQLite file in the data dir.

WAL journal, a schema version with forward-only migrations, messages linked by parent id (so a
regenerated reply or an edited turn is a sibling branch, and nothing is ever overwritten), and an
FTS5 index for search. Every write is one short transaction, committed as each message completes.
Failures become a `StorageError` that names the file, the problem and the fix; scribe never deletes,
truncates or rewrites a database it cannot read, and looks at an existing file read-only before it
writes anything: another program's database is refused untouched. The data dir is 0700 and the
database files 0600. Damaged rows (a parent loop, a missing parent, NULL or mistyped fields) are
read as far as they can be and listed in the records' `problems`, never looped on or crashed on.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.errors import InputError, ScribeError

DB_NAME = "conversations.db"
SIDECARS = ("-wal", "-shm")  # SQLite's WAL files next to the database
LOCK_TIMEOUT_S = 5.0  # how long a write waits for another scribe's transaction to finish
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: a larger id cannot even be looked up
# Around the matched words of a search snippet; private-use characters, never in real text.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"

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


class StorageError(ScribeError):
    """The conversation database cannot be opened, read or written."""


class ForeignDatabaseError(StorageError):
    """conversations.db is an SQLite database of another program; scribe leaves it untouched."""


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
    problems: list[str] = field(default_factory=list)  # malformed fields, read as defaults


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
    problems: list[str] = field(default_factory=list)  # malformed fields, read as defaults


@dataclass
class ThreadRead:
    """A branch read from the store: its messages, root first, and what was wrong with it."""

    messages: list[MessageRecord]
    problems: list[str] = field(default_factory=list)


def describe_damage(conversation_id: int, problems: list[str]) -> str:
    """Problems found reading a conversation, as one line for a warning."""
    return (
        f"conversation {conversation_id} is damaged ({'; '.join(problems)}); showing the part "
        "that could be read, nothing in the file was changed"
    )


@dataclass
class SearchHit:
    conversation_id: int
    message_id: int
    title: str
    snippet: str  # plain text: no markup, the matched words are at `marks`
    updated: float
    marks: list[tuple[int, int]] = field(default_factory=list)  # (start, end) in `snippet`

    def bracketed(self, left: str = "[", right: str = "]") -> str:
        """The snippet with each match between `left` and `right`, for plain-text output."""
        out, last = [], 0
        for start, end in self.marks:
            out += [self.snippet[last:start], left, self.snippet[start:end], right]
            last = end
        return "".join(out) + self.snippet[last:]


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


def _make_folder(path: Path) -> None:
    """The database's folder; the data dir itself is made (or tightened to) 0700. Another folder
    given explicitly is only created private, never chmod-ed: it may be shared on purpose."""
    folder = path.parent
    try:
        if folder == paths.data_dir():
            paths.make_private_dir(folder)
        else:
            with paths.private_umask():
                folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _classify(path, PermissionError(str(err))) from None
    if not os.access(folder, os.W_OK):
        raise _classify(path, PermissionError("no write permission"))


def _read_only_uri(path: Path) -> str:
    """A URI that opens `path` without any write. With no WAL content beside it, the file holds
    everything, so `immutable` also keeps SQLite from creating -wal/-shm files next to it."""
    wal = Path(f"{path}-wal")
    immutable = not wal.exists() or wal.stat().st_size == 0
    quoted = urllib.parse.quote(str(path.absolute()))
    return f"file:{quoted}?mode=ro" + ("&immutable=1" if immutable else "")


def check_existing(path: Path) -> None:
    """Refuse, reading only, a file that is not scribe's database; nothing is written to it.

    No file, an empty one, or one without tables is a new database. Tables without scribe's
    schema are another program's (ForeignDatabaseError); a schema newer than this scribe knows
    is refused too, and bytes that are not SQLite at all are reported by `_classify`."""
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
        db = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
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
        finally:
            db.close()
    except (sqlite3.Error, OSError) as err:
        raise _classify(path, err) from None
    if names and not _is_scribe_schema(version, columns):
        shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
        raise ForeignDatabaseError(
            f"{path} is not a scribe database (it holds another program's tables: {shown}); "
            f"scribe left it untouched: move it aside (mv {path} {path}.bak) or point "
            "SCRIBE_HOME at another folder"
        )
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


def _decode_text(data: bytes) -> str:
    """TEXT that is not valid UTF-8 (written by another tool) is read with U+FFFD, not an error."""
    return data.decode("utf-8", errors="replace")


def clean_text(text: str) -> str:
    """`text` without lone surrogates (undecodable bytes of argv or stdin, kept by Python's
    surrogateescape): each becomes U+FFFD, so the text can be stored, printed and tokenized."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def parse_id(text: str, what: str = "a conversation id") -> int:
    """A whole number from 1 to MAX_ID typed by the user, or an InputError saying so."""
    value = text.strip()
    if value.isascii() and value.isdigit() and len(value) <= len(str(MAX_ID)):
        number = int(value)
        if 1 <= number <= MAX_ID:
            return number
    shown = clean_text(text if len(text) <= 30 else text[:29] + "…")
    raise InputError(f"{what} must be a whole number from 1 to {MAX_ID}, not '{shown}'")


class ConversationStore:
    """The conversations database. Not shared between threads: open one per thread."""

    def __init__(self, path: Path | None = None, timeout: float = LOCK_TIMEOUT_S) -> None:
        self.path = path or default_path()
        _make_folder(self.path)
        check_existing(self.path)  # read-only: before anything can be written to the file
        try:
            with paths.private_umask():  # a new database (and its -wal, -shm) is 0600
                self.db = sqlite3.connect(
                    self.path, timeout=timeout, isolation_level=None, check_same_thread=False
                )
        except sqlite3.Error as err:
            raise _classify(self.path, err) from None
        self.db.row_factory = sqlite3.Row
        self.db.text_factory = _decode_text
        try:
            with paths.private_umask():
                self._setup()
        except sqlite3.Error as err:
            self.db.close()
            raise _classify(self.path, err) from None
        except BaseException:
            self.db.close()
            raise
        for file in (self.path, *(Path(f"{self.path}{end}") for end in SIDECARS)):
            if file.exists():
                paths.tighten(file)  # one made before scribe kept its files private

    # -- schema ---------------------------------------------------------------------------
    def _setup(self) -> None:
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:  # written since check_existing, by a newer scribe
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
                    _storable(model),
                    _storable(system),
                    _storable(template),
                    _json(template_values or {}),
                    _json(options or {}),
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
            _json(v) if k in ("template_values", "options") else _storable(v)
            for k, v in changes.items()
        ]
        assignments = ", ".join(f"{key} = ?" for key in changes)
        with self._write() as db:
            db.execute(
                f"UPDATE conversations SET {assignments}, updated = ? WHERE id = ?",
                (*values, time.time(), conversation_id),
            )

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        rows = []
        if 0 <= conversation_id <= MAX_ID:  # beyond it SQLite cannot even compare (OverflowError)
            rows = self._read(
                "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) "
                "AS n FROM conversations c WHERE c.id = ?",
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
            (min(limit, MAX_ID),),
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
                (
                    conversation_id,
                    parent_id,
                    role,
                    clean_text(content),
                    status,
                    _json(meta or {}),
                    now,
                ),
            )
            message_id = int(cursor.lastrowid or 0)
            db.execute(
                "UPDATE conversations SET head_id = ?, updated = ?, "
                "title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
                (message_id, now, role, make_title(clean_text(content)), conversation_id),
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
        return self.read_thread(conversation_id, head_id).messages

    def read_thread(self, conversation_id: int, head_id: int | None = None) -> ThreadRead:
        """`thread`, with what is wrong with it: a parent loop or a missing parent ends the
        branch there (it is shown from that message on), a missing head falls back to the
        newest message, and malformed fields are read as defaults. Never loops, never raises
        on bad rows."""
        problems: list[str] = []
        if head_id is None:
            record = self.get_conversation(conversation_id)
            head_id, problems = record.head_id, list(record.problems)
        by_id = {m.id: m for m in self.messages(conversation_id)}
        if head_id is not None and head_id not in by_id:
            problems.append(f"its head message {head_id} is missing")
            head_id = max(by_id, default=None)
        chain: list[MessageRecord] = []
        seen: set[int] = set()
        current = by_id.get(head_id) if head_id is not None else None
        while current is not None:
            chain.append(current)
            seen.add(current.id)
            problems += current.problems
            parent_id = current.parent_id
            if parent_id is None:
                break
            if parent_id in seen:
                problems.append(f"message {current.id}'s parent {parent_id} makes a loop")
                break
            if parent_id not in by_id:
                problems.append(f"message {current.id}'s parent {parent_id} is missing")
                break
            current = by_id[parent_id]
        return ThreadRead(chain[::-1], problems)

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
        current, seen = message_id, {message_id}
        while True:
            rows = self._read(
                "SELECT id FROM messages WHERE parent_id = ? ORDER BY id DESC LIMIT 1", (current,)
            )
            if not rows or rows[0]["id"] in seen:  # a parent loop has no end: stop where it turns
                return current
            current = int(rows[0]["id"])
            seen.add(current)

    # -- search ---------------------------------------------------------------------------
    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Messages matching every word of `text` (FTS5), best first, one hit per conversation."""
        query = fts_query(text)
        if not query:
            return []
        rows = self._read(
            "SELECT m.conversation_id, m.id, c.title, c.updated, "
            f"snippet(messages_fts, 0, '{MARK_OPEN}', '{MARK_CLOSE}', '…', 12) AS snip "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE messages_fts MATCH ? ORDER BY rank",
            (query,),
        )
        hits: dict[int, SearchHit] = {}
        for row in rows:
            fields = _Fields(row, f"message {row['id']}")
            conversation_id = fields.integer("conversation_id") or 0
            if conversation_id not in hits:
                snippet, marks = _unmark(fields.text("snip"))
                hits[conversation_id] = SearchHit(
                    conversation_id=conversation_id,
                    message_id=int(row["id"]),
                    title=fields.text("title"),
                    snippet=snippet,
                    updated=fields.number("updated"),
                    marks=marks,
                )
            if len(hits) >= limit:
                break
        return list(hits.values())


def fts_query(text: str) -> str:
    """Each word quoted, so punctuation in the user's text is never FTS5 syntax."""
    words = [w.replace('"', '""') for w in clean_text(text).split()]
    return " ".join(f'"{w}"' for w in words if w.strip('"'))


def _unmark(snippet: str) -> tuple[str, list[tuple[int, int]]]:
    """A snippet with MARK_OPEN/MARK_CLOSE around its matches as plain text (whitespace runs as
    one space) and the (start, end) of each match in it."""
    plain: list[str] = []
    marks: list[tuple[int, int]] = []
    start: int | None = None
    for char in " ".join(snippet.split()):
        if char == MARK_OPEN:
            start = len(plain)
        elif char == MARK_CLOSE:
            if start is not None and start < len(plain):
                marks.append((start, len(plain)))
            start = None
        else:
            plain.append(char)
    return "".join(plain), marks


def make_title(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def _storable(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _json(value: Any) -> str:
    return clean_text(json.dumps(value, ensure_ascii=False))


class _Fields:
    """One row's fields read as the types scribe writes. A malformed field (NULL, another type,
    broken JSON: another tool edited the file) is read as a default and described in `problems`,
    so one bad row is reported instead of crashing every command that reads it."""

    def __init__(self, row: sqlite3.Row, what: str) -> None:
        self.row, self.what = row, what
        self.problems: list[str] = []

    def _bad(self, key: str, why: str) -> None:
        self.problems.append(f"{self.what} has {why} {key}")

    def text(self, key: str, default: str = "") -> str:
        value = self.row[key]
        if isinstance(value, str):
            return value
        if value is None:
            self._bad(key, "NULL")
            return default
        self._bad(key, f"non-text ({type(value).__name__})")
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return str(value)

    def optional_text(self, key: str) -> str | None:
        return None if self.row[key] is None else self.text(key)

    def number(self, key: str, default: float = 0.0) -> float:
        value = self.row[key]
        if isinstance(value, (int, float)):
            return float(value)
        self._bad(key, "NULL" if value is None else "non-numeric")
        return default

    def integer(self, key: str) -> int | None:
        value = self.row[key]
        if value is None or isinstance(value, int):
            return value
        self._bad(key, "non-integer")
        return None

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.row[key]
        if value is None or value == "":
            return {}
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        self._bad(key, "malformed (not a JSON object)")
        return {}


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    fields = _Fields(row, f"conversation {row['id']}")
    record = ConversationRecord(
        id=int(row["id"]),
        title=fields.text("title"),
        created=fields.number("created"),
        updated=fields.number("updated"),
        model=fields.optional_text("model"),
        system=fields.optional_text("system"),
        template=fields.optional_text("template"),
        template_values={str(k): str(v) for k, v in fields.mapping("template_values").items()},
        options=fields.mapping("options"),
        head_id=fields.integer("head_id"),
        message_count=int(row["n"]) if "n" in row.keys() else 0,
    )
    record.problems = fields.problems
    return record


def _message(row: sqlite3.Row) -> MessageRecord:
    fields = _Fields(row, f"message {row['id']}")
    record = MessageRecord(
        id=int(row["id"]),
        conversation_id=fields.integer("conversation_id") or 0,
        parent_id=fields.integer("parent_id"),
        role=fields.text("role", "user"),
        content=fields.text("content"),
        status=fields.text("status", "complete"),
        meta=fields.mapping("meta"),
        created=fields.number("created"),
    )
    record.problems = fields.problems
    return record

"""Saved conversations: one SQLite file in the data dir.

WAL journal, a schema version with forward-only migrations, messages linked by parent id (so a
regenerated reply or an edited turn is a sibling branch, and nothing is ever overwritten), and an
FTS5 index for search. Every write is one short transaction, committed as each message completes.
Failures become a `StorageError` that names the file, the problem and the fix; scribe never deletes,
truncates or rewrites a database it cannot read, and looks at an existing file read-only before it
writes anything: another program's database is refused untouched. The data dir is 0700 and the
database files 0600. Damaged rows (a parent loop, a missing parent, NULL or mistyped fields) are
read as far as they can be and listed in the records' `problems`, never looped on or crashed on.

The store is here; its parts are beside it: `schema` (migrations, the read-only check), `storage`
(folder, file modes, errors), `rows` (damage-tolerant fields), `branches` (message records and
the branch walk) and `search` (FTS5 queries and snippets).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine import paths
from scribe.engine.chat.branches import MessageRecord, ThreadRead, message_record, walk_thread
from scribe.engine.chat.rows import RowFields, decode_text
from scribe.engine.chat.schema import check_existing, open_read_only, prepare, user_version
from scribe.engine.chat.search import SEARCH_SQL, fts_query, unmark
from scribe.engine.chat.storage import (
    StorageError,
    make_folder,
    storage_error,
    tighten_files,
    writable,
)
from scribe.engine.errors import InputError

DB_NAME = "conversations.db"
LOCK_TIMEOUT_S = 5.0  # how long a write waits for another scribe's transaction to finish
MAX_ID = 2**63 - 1  # SQLite's INTEGER range: a larger id cannot even be looked up
# The columns update_conversation may change, and those (of both tables) kept as JSON text.
SETTING_FIELDS = {"model", "system", "template", "template_values", "options", "title", "head_id"}
JSON_FIELDS = ("template_values", "options", "meta")
# The columns a new row of each table is given, in the order _insert takes their values.
INSERTED = {
    "conversations": (
        "created",
        "updated",
        "model",
        "system",
        "template",
        "template_values",
        "options",
    ),
    "messages": ("conversation_id", "parent_id", "role", "content", "status", "meta", "created"),
}


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


def describe_damage(conversation_id: int, problems: list[str]) -> str:
    """Problems found reading a conversation, as one line for a warning."""
    return (
        f"conversation {conversation_id} is damaged ({'; '.join(problems)}); showing the part "
        "that could be read, nothing in the file was changed"
    )


def default_path() -> Path:
    return paths.data_dir() / DB_NAME


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


def make_title(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


class ConversationStore:
    """The conversations database. Not shared between threads: open one per thread."""

    def __init__(
        self, path: Path | None = None, timeout: float = LOCK_TIMEOUT_S, reading_only: bool = False
    ) -> None:
        """`reading_only`: the caller never writes (`scribe log`), so a database in a folder (or
        a file) that cannot be written is opened read-only instead of refused."""
        self.path = path or default_path()
        if reading_only and self.path.exists() and not writable(self.path):
            self.db = open_read_only(self.path, timeout)
        else:
            self.db = self._open(timeout)
        self.db.row_factory = sqlite3.Row
        self.db.text_factory = decode_text

    def _open(self, timeout: float) -> sqlite3.Connection:
        """The database for reading and writing, made (0600) and migrated as needed."""
        make_folder(self.path)
        check_existing(self.path)  # read-only: before anything can be written to the file
        try:
            with paths.private_umask():  # a new database (and its -wal, -shm) is 0600
                db = sqlite3.connect(
                    self.path, timeout=timeout, isolation_level=None, check_same_thread=False
                )
        except sqlite3.Error as err:
            raise storage_error(self.path, err) from None
        try:
            with paths.private_umask():
                prepare(db, self.path)
        except sqlite3.Error as err:
            db.close()
            raise storage_error(self.path, err) from None
        except BaseException:
            db.close()
            raise
        tighten_files(self.path)
        return db

    @property
    def schema_version(self) -> int:
        return user_version(self.db)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; a lock or I/O failure rolls back and becomes a StorageError."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise storage_error(self.path, err) from None
        try:
            yield self.db
            self.db.execute("COMMIT")
        except sqlite3.Error as err:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise storage_error(self.path, err) from None
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise storage_error(self.path, err) from None

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
        row = (now, now, model, system, template, template_values or {}, options or {})
        with self._write() as db:
            return _insert(db, "conversations", row)

    def update_conversation(self, conversation_id: int, **changes: Any) -> None:
        """Change settings: model, system, template, template_values, options, title, head_id."""
        unknown = set(changes) - SETTING_FIELDS
        if unknown:
            raise ValueError(f"unknown conversation fields {sorted(unknown)}")
        if not changes:
            return
        assignments = ", ".join(f"{key} = ?" for key in changes)
        with self._write() as db:
            db.execute(
                f"UPDATE conversations SET {assignments}, updated = ? WHERE id = ?",
                (*_storable(changes).values(), time.time(), conversation_id),
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
        now, content = time.time(), clean_text(content)
        row = (conversation_id, parent_id, role, content, status, meta or {}, now)
        with self._write() as db:
            message_id = _insert(db, "messages", row)
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
        return [message_record(row) for row in rows]

    def thread(self, conversation_id: int, head_id: int | None = None) -> list[MessageRecord]:
        """The branch that ends at `head_id` (default: the conversation's head), root first."""
        return self.read_thread(conversation_id, head_id).messages

    def read_thread(self, conversation_id: int, head_id: int | None = None) -> ThreadRead:
        """`thread`, with what is wrong with it (see `walk_thread`); malformed fields are read
        as defaults. Never loops, never raises on bad rows."""
        problems: list[str] = []
        if head_id is None:
            record = self.get_conversation(conversation_id)
            head_id, problems = record.head_id, list(record.problems)
        return walk_thread(self.messages(conversation_id), head_id, problems)

    def siblings(self, message_id: int) -> list[MessageRecord]:
        """The message and its alternatives (same parent, same role), oldest first."""
        rows = self._read(
            "SELECT s.* FROM messages s JOIN messages m ON m.id = ? "
            "WHERE s.conversation_id = m.conversation_id AND s.role = m.role "
            "AND s.parent_id IS m.parent_id ORDER BY s.id",
            (message_id,),
        )
        return [message_record(row) for row in rows]

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
        query = fts_query(clean_text(text))
        if not query:
            return []
        hits: dict[int, SearchHit] = {}
        for row in self._read(SEARCH_SQL, (query,)):
            fields = RowFields(row, f"message {row['id']}")
            conversation_id = fields.integer("conversation_id") or 0
            if conversation_id not in hits:
                snippet, marks = unmark(fields.text("snip"))
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


def _insert(db: sqlite3.Connection, table: str, values: tuple[Any, ...]) -> int:
    """One new row of `table`: `values` for its INSERTED columns, made storable; its id."""
    row = _storable(dict(zip(INSERTED[table], values, strict=True)))
    places = ", ".join("?" for _ in row)
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({places})", tuple(row.values())
    )
    return int(cursor.lastrowid or 0)


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """`values` as bound to SQLite: JSON_FIELDS as JSON text, text without lone surrogates."""
    return {
        key: _json(value) if key in JSON_FIELDS else _clean(value) for key, value in values.items()
    }


def _clean(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _json(value: Any) -> str:
    return clean_text(json.dumps(value, ensure_ascii=False))


def _conversation(row: sqlite3.Row) -> ConversationRecord:
    fields = RowFields(row, f"conversation {row['id']}")
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

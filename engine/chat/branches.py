"""Saved messages, and the branch (thread) from a head back to its root, read without looping."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scribe.engine.chat.rows import RowFields


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


def message_record(row: sqlite3.Row) -> MessageRecord:
    fields = RowFields(row, f"message {row['id']}")
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


def walk_thread(
    messages: Iterable[MessageRecord], head_id: int | None, problems: list[str]
) -> ThreadRead:
    """The branch of `messages` that ends at `head_id`, adding to `problems` what is wrong: a
    parent loop or a missing parent ends the branch there (it is shown from that message on), and
    a missing head falls back to the newest message. Damaged links never make it loop."""
    by_id = {m.id: m for m in messages}
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

"""The messages a chat session shows: linked to their parent, and how the prompt window and the
store name them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from scribe.engine.chat.branches import MessageRecord
from scribe.engine.prompting.chat_window import Exchange


@dataclass(eq=False)
class Message:
    role: str  # "user" or "assistant"
    content: str
    status: str = "complete"  # "complete", "stopped", "error"; "streaming" while generated
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # None until saved
    parent: Message | None = None
    created: float = field(default_factory=time.time)


def exchanges(thread: list[Message]) -> list[Exchange]:
    """The thread as user+reply pairs (a user turn without a reply is a pair too). Each pair's
    ids are `message_key`s, which Window.in_window reports back."""
    pairs: list[Exchange] = []
    for message in thread:
        key = message_key(message)
        if message.role == "assistant" and pairs and pairs[-1].assistant is None:
            last = pairs[-1]
            pairs[-1] = Exchange(last.user, message.content, (*last.ids, key))
        elif message.role == "assistant":
            pairs.append(Exchange("", message.content, (key,)))
        else:
            pairs.append(Exchange(message.content, None, (key,)))
    return pairs


def message_key(message: Message) -> int:
    """How a message is named in Window.in_window: the object's identity, so it holds before
    and after the message is saved."""
    return id(message)


def linked_messages(records: list[MessageRecord]) -> list[Message]:
    """Saved records as the session's linked messages, root first."""
    thread: list[Message] = []
    for record in records:
        parent = thread[-1] if thread else None
        thread.append(
            Message(
                record.role,
                record.content,
                record.status,
                dict(record.meta),
                record.id,
                parent,
                record.created,
            )
        )
    return thread

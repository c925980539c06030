"""A saved conversation as Markdown (`scribe log --md ID`, `/export`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class _Conversation(Protocol):
    id: int | None
    title: str
    model: str | None
    system: str | None
    template: str | None


class _Message(Protocol):
    role: str
    content: str
    status: str


@dataclass
class ConversationInfo:
    """The header facts of a conversation that is not a saved record (a live chat session)."""

    id: int | None
    title: str
    model: str | None
    system: str | None
    template: str | None


ROLE_NAMES = {"user": "You", "assistant": "Assistant"}


def when(stamp: float) -> str:
    """A saved time as local "YYYY-MM-DD HH:MM"; a damaged one (out of range) as question marks."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
    except (OverflowError, OSError, ValueError):
        return "????-??-?? ??:??"


def to_markdown(
    conversation: _Conversation,
    thread: Sequence[_Message],
    created: float | None = None,
) -> str:
    title = conversation.title or "Untitled conversation"
    lines = [f"# {title}", ""]
    facts = []
    if conversation.id is not None:
        facts.append(f"conversation {conversation.id}")
    if created:
        facts.append(when(created))
    if conversation.model:
        facts.append(f"model `{conversation.model}`")
    if conversation.template:
        facts.append(f"template `{conversation.template}`")
    if facts:
        lines += ["*" + ", ".join(facts) + "*", ""]
    if conversation.system:
        lines += ["> System: " + conversation.system.replace("\n", "\n> "), ""]
    for message in thread:
        heading = f"## {ROLE_NAMES.get(message.role, message.role)}"
        if message.status != "complete":
            heading += f" ({message.status})"
        lines += [heading, "", str(message.content or "").rstrip() or "*(empty)*", ""]
    return "\n".join(lines).rstrip() + "\n"

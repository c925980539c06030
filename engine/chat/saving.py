"""The conversation being shown, as it is in the store: its id, title and time, the messages not
saved yet, and every read and write of the store, each under one lock (the UI thread and the
workers share the store). A failed save (locked, read-only) is kept in `save_error` for the UI
and its messages stay queued: a conversation is never saved with a gap in it."""

from __future__ import annotations

import threading
import time
from typing import Any

from scribe.engine.chat.branches import MessageRecord, ThreadRead
from scribe.engine.chat.conversations import ConversationRecord, ConversationStore, make_title
from scribe.engine.chat.messages import Message
from scribe.engine.chat.storage import StorageError


class SavedConversation:
    """`store` None: nothing is saved, and the methods that read it must not be called."""

    def __init__(self, store: ConversationStore | None) -> None:
        self.store = store
        self.lock = threading.RLock()
        self.id: int | None = None  # None until its first message is saved
        self.title = ""
        self.created: float | None = None
        self.save_error: StorageError | None = None
        self._unsaved: list[Message] = []

    @property
    def _db(self) -> ConversationStore:
        assert self.store is not None, "the session checks for a store first"
        return self.store

    # -- which conversation -----------------------------------------------------------------
    def forget(self) -> None:
        """Show a new conversation, saved with its first message."""
        self.id, self.title, self.created = None, "", None

    def open(self, conversation_id: int) -> tuple[ConversationRecord, ThreadRead]:
        """Show a saved conversation: its record and the branch at its head."""
        with self.lock:
            record = self._db.get_conversation(conversation_id)
            read = self._db.read_thread(conversation_id, record.head_id)
        self.id, self.title, self.created = record.id, record.title, record.created
        return record, read

    def last(self) -> ConversationRecord | None:
        with self.lock:
            return self._db.last_conversation()

    def recent(self, limit: int) -> list[ConversationRecord]:
        with self.lock:
            return self._db.list_conversations(limit)

    # -- branches ---------------------------------------------------------------------------
    def siblings(self, message_id: int) -> list[int]:
        """The ids of a message and its alternatives, oldest first; [] if they cannot be read."""
        if self.store is None:
            return []
        with self.lock:
            try:
                return [s.id for s in self.store.siblings(message_id)]
            except StorageError:
                return []

    def switch_branch(self, message_id: int, step: int) -> list[MessageRecord] | None:
        """Make the newest branch under the sibling `step` away from `message_id` the head, and
        return that branch; None when there is no such sibling."""
        assert self.id is not None
        with self.lock:
            ids = [s.id for s in self._db.siblings(message_id)]
            index = ids.index(message_id) + step
            if not 0 <= index < len(ids):
                return None
            head = self._db.newest_leaf(ids[index])
            self._db.set_head(self.id, head)
            return self._db.thread(self.id, head)

    # -- saving -----------------------------------------------------------------------------
    def persist(self, message: Message, settings: dict[str, Any]) -> None:
        """Save now; if the store fails (locked, read-only), keep it and retry on the next save.
        `settings` are the conversation's, saved with it if this is its first message."""
        self._unsaved.append(message)
        self.flush(settings)

    def flush(self, settings: dict[str, Any]) -> bool:
        """Save every message not saved yet, in order. True when nothing is left unsaved."""
        if self.store is None:
            self._unsaved.clear()
            return True
        with self.lock:
            try:
                while self._unsaved:
                    message = self._unsaved[0]
                    if self.id is None:
                        self.id = self.store.create_conversation(**settings)
                        self.created = time.time()
                    parent_id = message.parent.id if message.parent is not None else None
                    message.id = self.store.add_message(
                        self.id,
                        parent_id,
                        message.role,
                        message.content,
                        message.status,
                        message.meta,
                    )
                    self._unsaved.pop(0)
                    if not self.title and message.role == "user":
                        self.title = make_title(message.content)
                self.save_error = None
            except StorageError as err:
                self.save_error = err
        return not self._unsaved

    @property
    def unsaved(self) -> int:
        return len(self._unsaved)

    def save_settings(self, changes: dict[str, Any]) -> None:
        """Settings changed; a conversation not saved yet gets them with its first message."""
        if self.store is None or self.id is None:
            return
        with self.lock:
            try:
                self.store.update_conversation(self.id, **changes)
            except StorageError as err:
                self.save_error = err

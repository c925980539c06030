"""Saving a chat session: messages in order, kept and retried while the store fails."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from scribe.engine.chat.conversations import ConversationStore, make_title
from scribe.engine.chat.storage import StorageError

if TYPE_CHECKING:
    from scribe.engine.chat.session import Message, Settings


class SavingMixin:
    """ChatSession's saving. A failed save (locked, read-only) is kept in `save_error` for the UI
    and the messages stay queued: a conversation is never saved with a gap in it."""

    # Set up by ChatSession.__init__.
    store: ConversationStore | None
    settings: Settings
    conversation_id: int | None
    title: str
    created: float | None
    save_error: StorageError | None
    _unsaved: list[Message]
    _lock: threading.RLock

    def _persist(self, message: Message) -> None:
        """Save now; if the store fails (locked, read-only), keep it and retry on the next save."""
        self._unsaved.append(message)
        self.flush()

    def flush(self) -> bool:
        """Save every message not saved yet, in order. True when nothing is left unsaved."""
        if self.store is None:
            self._unsaved.clear()
            return True
        with self._lock:
            try:
                while self._unsaved:
                    message = self._unsaved[0]
                    if self.conversation_id is None:
                        self._create_conversation()
                    assert self.conversation_id is not None
                    parent_id = message.parent.id if message.parent is not None else None
                    message.id = self.store.add_message(
                        self.conversation_id,
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

    def _create_conversation(self) -> None:
        assert self.store is not None
        s = self.settings
        self.conversation_id = self.store.create_conversation(
            model=s.model,
            system=s.system,
            template=s.template,
            template_values=s.template_values,
            options=s.options,
        )
        self.created = time.time()

    def _save_settings(self, *names: str) -> None:
        if self.store is None or self.conversation_id is None:
            return  # saved with the conversation when its first message is
        changes = {name: getattr(self.settings, name) for name in names}
        with self._lock:
            try:
                self.store.update_conversation(self.conversation_id, **changes)
            except StorageError as err:
                self.save_error = err

"""Chat logic shared by the Textual app and plain mode, with no UI in it.

A `ChatSession` holds the conversation being shown (the branch from the root to its head), its
settings (system prompt, template, options, model) and the store. `send`, `regenerate` and `edit`
return a `Reply`, whose `stream(cancel)` yields the reply's text as it is generated and saves it
when it ends: complete, or "stopped" when `cancel` was set. Old replies and edited turns stay in
the store as sibling branches. The session's settings are in `settings`, its saving in `saving`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scribe.engine.chat.branches import MessageRecord
from scribe.engine.chat.conversations import (
    ConversationRecord,
    ConversationStore,
    describe_damage,
    make_title,
)
from scribe.engine.chat.engine import ChatEngine, load_engine
from scribe.engine.chat.export import ConversationInfo, to_markdown
from scribe.engine.chat.saving import SavingMixin
from scribe.engine.chat.settings import CHAT_TEMPLATE, SettingsMixin
from scribe.engine.chat.storage import StorageError
from scribe.engine.errors import InputError, ScribeError
from scribe.engine.prompting.chat_window import (
    Exchange,
    TokenCounter,
    Window,
    build_window,
    reply_reserve,
)
from scribe.engine.prompting.templates import Template, get_template
from scribe.engine.runtime.options import GenerationOptions


class ChatError(ScribeError):
    """A chat action that cannot be done now (no model yet, nothing to regenerate...)."""


@dataclass(eq=False)
class Message:
    role: str  # "user" or "assistant"
    content: str
    status: str = "complete"  # "complete", "stopped", "error"; "streaming" while generated
    meta: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # None until saved
    parent: Message | None = None
    created: float = field(default_factory=time.time)


@dataclass
class Settings:
    model: str | None = None
    system: str | None = None  # None: the chat format's default
    template: str | None = None
    template_values: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # overrides, by field name

    def copy(self) -> Settings:
        """A copy whose mappings can change without changing these."""
        return Settings(
            self.model, self.system, self.template, dict(self.template_values), dict(self.options)
        )


class Reply:
    """One reply being generated: iterate `stream(cancel)`, then read `message`."""

    def __init__(
        self, session: ChatSession, user: Message, window: Window, options: GenerationOptions
    ) -> None:
        self.session = session
        self.user = user
        self.window = window
        self.options = options
        self.message = Message("assistant", "", status="streaming", parent=user)

    def stream(self, cancel: threading.Event | None = None) -> Iterator[str]:
        """Text deltas of the reply (leading whitespace dropped); saves the message at the end."""
        cancel = cancel or threading.Event()
        engine = self.session.require_engine()
        text = ""
        status = "error"
        try:
            for delta in engine.stream(self.window.prompt, self.options, cancel):
                if not text:
                    delta = delta.lstrip()
                if delta:
                    text += delta
                    self.message.content = text
                    yield delta
            status = "stopped" if cancel.is_set() else "complete"
        except GeneratorExit:
            status = "stopped"
            raise
        finally:
            self.message.content = text.rstrip()
            self.message.status = status
            self.session._reply_done(self)

    def run(self, cancel: threading.Event | None = None) -> Message:
        for _ in self.stream(cancel):
            pass
        return self.message


class ChatSession(SettingsMixin, SavingMixin):
    def __init__(
        self,
        store: ConversationStore | None,
        loader: Callable[[str | None], ChatEngine] = load_engine,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.loader = loader
        self.initial = settings or Settings()
        self.settings = self.initial.copy()
        self.engine: ChatEngine | None = None
        self.conversation_id: int | None = None
        self.title = ""
        self.created: float | None = None
        self.thread: list[Message] = []
        self.warning = ""  # one line about damage in the opened conversation, for the UI
        self.save_error: StorageError | None = None
        self._unsaved: list[Message] = []
        self._lock = threading.RLock()  # the store is used from the UI thread and workers
        self._counter: TokenCounter | None = None
        # The oldest message in the last reply's window: kept as the next window's start while
        # it fits, so the model's cached prefix stays valid (engine/prompting/chat_window.py).
        self._window_start: Message | None = None
        self._chat_template = get_template(CHAT_TEMPLATE)
        self._template: Template | None = None
        if self.settings.template:
            self.set_template(self.settings.template, self.settings.template_values)

    def require_engine(self) -> ChatEngine:
        if self.engine is None:
            raise ChatError("the model is still loading; wait for it (see the status line)")
        return self.engine

    # -- conversations --------------------------------------------------------------------
    def new(self) -> None:
        """Start a new conversation with the settings given at start-up (model kept)."""
        model = self.settings.model
        self.settings = self.initial.copy()
        self.settings.model = model
        self.set_template(self.settings.template, self.settings.template_values)
        self.conversation_id, self.title, self.created, self.thread = None, "", None, []
        self.warning = ""

    def open(self, conversation_id: int) -> ConversationRecord:
        """Show a saved conversation with its settings; the caller loads its model if needed."""
        store = self._require_store()
        with self._lock:
            record = store.get_conversation(conversation_id)
            read = store.read_thread(conversation_id, record.head_id)
        self.conversation_id, self.title, self.created = record.id, record.title, record.created
        self.thread = _messages(read.messages)
        problems = [*record.problems, *read.problems]
        self.warning = describe_damage(record.id, problems) if problems else ""
        self.settings = Settings(
            model=record.model if record.model is not None else self.settings.model,
            system=record.system,
            template=None,
            template_values={},
            options=dict(record.options),
        )
        try:
            self.set_template(record.template, record.template_values)
        except ScribeError:
            self._template = None  # the template was removed since; plain chat
        return record

    def open_last(self) -> ConversationRecord | None:
        store = self._require_store()
        with self._lock:
            record = store.last_conversation()
        return self.open(record.id) if record else None

    def list_conversations(self, limit: int = 50) -> list[ConversationRecord]:
        with self._lock:
            return self._require_store().list_conversations(limit)

    def export_markdown(self) -> str:
        info = ConversationInfo(
            self.conversation_id,
            self.title or (make_title(self.thread[0].content) if self.thread else ""),
            self.model_name,
            self.settings.system,
            self.settings.template,
        )
        return to_markdown(info, self.thread, self.created)

    def _require_store(self) -> ConversationStore:
        if self.store is None:
            raise ChatError("conversations are not being saved in this session")
        return self.store

    # -- turns and branches ---------------------------------------------------------------
    def send(self, text: str) -> Reply:
        """Add a user turn (saved at once) and return the reply to stream."""
        if not text.strip():
            raise InputError("nothing to send: type a message first")
        self.require_engine()
        meta = self._template_meta()
        parent = self.thread[-1] if self.thread else None
        user = Message("user", text, meta=meta, parent=parent)
        self.thread.append(user)
        self._persist(user)
        return self._reply_to(user)

    def regenerate(self) -> Reply:
        """A new reply to the last user turn; the old reply stays as a sibling branch."""
        self.require_engine()
        if self.thread and self.thread[-1].role == "assistant":
            self.thread.pop()
        if not self.thread:
            raise ChatError("nothing to regenerate yet: send a message first")
        return self._reply_to(self.thread[-1])

    def edit(self, message: Message, text: str) -> Reply:
        """Replace an earlier user turn by a new one (a fork: the old branch is kept)."""
        if message.role != "user" or message not in self.thread:
            raise ChatError("only your own turns in this conversation can be edited")
        if not text.strip():
            raise InputError("an edited turn cannot be empty")
        self.require_engine()
        index = self.thread.index(message)
        user = Message("user", text, meta=dict(message.meta), parent=message.parent)
        self.thread = self.thread[:index] + [user]
        self._persist(user)
        return self._reply_to(user)

    def last_user_message(self) -> Message | None:
        return next((m for m in reversed(self.thread) if m.role == "user"), None)

    def last_reply(self) -> Message | None:
        return next((m for m in reversed(self.thread) if m.role == "assistant"), None)

    def branch_info(self, message: Message) -> tuple[int, int]:
        """(position, count) of a message among its siblings, 1-based; (1, 1) without any."""
        if message.id is None or self.store is None:
            return 1, 1
        with self._lock:
            try:
                ids = [s.id for s in self.store.siblings(message.id)]
            except StorageError:
                return 1, 1
        return (ids.index(message.id) + 1 if message.id in ids else 1), max(len(ids), 1)

    def switch_branch(self, message: Message, step: int) -> bool:
        """Show the previous (-1) or next (+1) sibling of `message`, with its newest branch."""
        if message.id is None or self.conversation_id is None:
            return False
        store = self._require_store()
        with self._lock:
            ids = [s.id for s in store.siblings(message.id)]
            index = ids.index(message.id) + step
            if not 0 <= index < len(ids):
                return False
            head = store.newest_leaf(ids[index])
            store.set_head(self.conversation_id, head)
            self.thread = _messages(store.thread(self.conversation_id, head))
        return True

    # -- the window -----------------------------------------------------------------------
    def window(self, current: str = "", before: Message | None = None) -> Window | None:
        """The prompt for `current` after the thread (or after the turns before `before`);
        None while no model is loaded."""
        if self.engine is None:
            return None
        thread = self.thread if before is None else self.thread[: self.thread.index(before)]
        return self._window(thread, current, self._template, self.settings.template_values)

    def _window(
        self,
        thread: list[Message],
        current: str,
        template: Template | None,
        values: dict[str, str],
    ) -> Window:
        engine = self.require_engine()
        options = self.options(template)
        cut_mode = template.cut if template is not None else self._chat_template.cut
        start = self._window_start
        keep_from = message_key(start) if any(m is start for m in thread) else None
        return build_window(
            self.chat_format,
            exchanges(thread),
            current,
            n_positions=engine.n_positions,
            reserve=reply_reserve(options.max_new_tokens, engine.n_positions),
            encode=engine.encode,
            decode=engine.decode,
            system=self.settings.system,
            frame=template,
            values=values,
            cut_mode=cut_mode,
            count=self._counter,
            keep_from=keep_from,
        )

    def _reply_to(self, user: Message) -> Reply:
        template = self._template_for(user)
        values = dict(user.meta.get("values", {})) if template is not None else {}
        index = self.thread.index(user)
        window = self._window(self.thread[:index], user.content, template, values)
        keys = {message_key(m): m for m in self.thread[:index]}
        self._window_start = keys.get(window.start_key) if window.start_key is not None else None
        options = self.options(template).updated(max_new_tokens=window.reserve)
        return Reply(self, user, window, options)

    def _reply_done(self, reply: Reply) -> None:
        message = reply.message
        if message.status == "error" and not message.content:
            return  # nothing worth keeping; the error is reported by the UI
        if reply.user in self.thread:
            self.thread = self.thread[: self.thread.index(reply.user) + 1] + [message]
        self._persist(message)


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


def _messages(records: list[MessageRecord]) -> list[Message]:
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

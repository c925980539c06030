"""Chat logic shared by the Textual app and plain mode, with no UI in it.

A `ChatSession` holds the conversation being shown (the branch from the root to its head) and the
model, and hands the rest to its parts: `setup` (its settings: template, system prompt, options,
model; `ConversationSettings`) and `saved` (the conversation as it is in the store;
`SavedConversation`). `send`, `regenerate` and `edit` return a `Reply`, whose `stream(cancel)`
yields the reply's text as it is generated and saves it when it ends: complete, or "stopped" when
`cancel` was set; its `stats` are then those of the generation. Old replies and edited turns stay
in the store as sibling branches.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

from scribe.engine.chat.conversation_settings import ConversationSettings, Settings
from scribe.engine.chat.conversations import (
    ConversationRecord,
    ConversationStore,
    describe_damage,
    make_title,
)
from scribe.engine.chat.engine import ChatEngine, load_engine
from scribe.engine.chat.markdown import ConversationInfo, to_markdown
from scribe.engine.chat.messages import Message, exchanges, linked_messages, message_key
from scribe.engine.chat.saving import SavedConversation
from scribe.engine.chat.storage import StorageError
from scribe.engine.errors import InputError, ScribeError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.prompting.chat_window import TokenCounter, Window, build_window, reply_reserve
from scribe.engine.prompting.templates import Template
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.stream import Stream, StreamStats


class ChatError(ScribeError):
    """A chat action that cannot be done now (no model yet, nothing to regenerate...)."""


class Reply:
    """One reply being generated: iterate `stream(cancel)`, then read `message` and `stats`."""

    def __init__(
        self, session: ChatSession, user: Message, window: Window, options: GenerationOptions
    ) -> None:
        self.session = session
        self.user = user
        self.window = window
        self.options = options
        self.message = Message("assistant", "", status="streaming", parent=user)
        self.stats: StreamStats | None = None  # the generation's figures, once it has run

    def stream(self, cancel: threading.Event | None = None) -> Iterator[str]:
        """Text deltas of the reply (leading whitespace dropped); saves the message at the end."""
        cancel = cancel or threading.Event()
        engine = self.session.require_engine()
        text = ""
        status = "error"
        answer = None
        try:
            answer = engine.answer(self.window.prompt, self.options, cancel)
            for delta in self._checked(answer):
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
            if answer is not None:
                self.stats = answer.stats
            self.message.content = text.rstrip()
            self.message.status = status
            self.session._reply_done(self)

    def _checked(self, answer: Stream) -> Iterator[str]:
        """The answer's deltas; a checked template's answer (proofreading, a check) comes
        whole, once checked against the user's text (Template.settle)."""
        from scribe.engine.runtime.generation import EmptyAnswer  # loaded with the model

        template = self.session.setup.template_for(self.user)
        if template is None or not template.checked:
            yield from answer
            return
        try:
            text = answer.text()
        except EmptyAnswer:  # the proofread text is an answer
            text = ""
        yield template.settle(self.user.content, text)

    def run(self, cancel: threading.Event | None = None) -> Message:
        for _ in self.stream(cancel):
            pass
        return self.message


class ChatSession:
    def __init__(
        self,
        store: ConversationStore | None,
        loader: Callable[[str | None], ChatEngine] = load_engine,
        settings: Settings | None = None,
    ) -> None:
        self.loader = loader
        self.saved = SavedConversation(store)
        self.setup = ConversationSettings(settings or Settings(), self.saved.save_settings)
        self.engine: ChatEngine | None = None
        self.thread: list[Message] = []
        self.warning = ""  # one line about damage in the opened conversation, for the UI
        self._counter: TokenCounter | None = None
        # The oldest message in the last reply's window: kept as the next window's start while
        # it fits, so the model's cached prefix stays valid (see `build_window`'s keep_from).
        self._window_start: Message | None = None

    # -- what the parts hold, as the UIs read it --------------------------------------------
    @property
    def store(self) -> ConversationStore | None:
        return self.saved.store

    @property
    def conversation_id(self) -> int | None:
        return self.saved.id

    @property
    def title(self) -> str:
        return self.saved.title

    @property
    def created(self) -> float | None:
        return self.saved.created

    @property
    def save_error(self) -> StorageError | None:
        return self.saved.save_error

    @property
    def unsaved(self) -> int:
        return self.saved.unsaved

    @property
    def settings(self) -> Settings:
        return self.setup.values

    @property
    def template(self) -> Template | None:
        return self.setup.template

    @property
    def chat_format(self) -> ChatFormat:
        """The model card's own chat format when it has one, else the chat template's."""
        return self.setup.chat_format

    def set_template(self, name: str | None, values: dict[str, str] | None = None) -> None:
        self.setup.set_template(name, values)

    def set_system(self, text: str | None) -> None:
        self.setup.set_system(text)

    def set_option(self, name: str, value: str) -> tuple[str, Any]:
        return self.setup.set_option(name, value)

    def system_prompt(self) -> str:
        return self.setup.system_prompt()

    def options(self, template: Template | None = None) -> GenerationOptions:
        return self.setup.options(template)

    def flush(self) -> bool:
        """Save every message not saved yet, in order. True when nothing is left unsaved."""
        return self.saved.flush(dataclasses.asdict(self.settings))

    def _persist(self, message: Message) -> None:
        self.saved.persist(message, dataclasses.asdict(self.settings))

    def _require_store(self) -> ConversationStore:
        if self.store is None:
            raise ChatError("conversations are not being saved in this session")
        return self.store

    # -- the model --------------------------------------------------------------------------
    def load_model(self, spec: str | None = None) -> ChatEngine:
        """Load (blocking: call from a worker) and switch to the model; saved per conversation."""
        engine = self.loader(spec)
        with self.saved.lock:
            self.engine = engine
            self._counter = TokenCounter(engine.encode)
            self.setup.use_model(spec, engine.card)
        return engine

    @property
    def model_name(self) -> str:
        if self.engine is not None:
            return self.engine.name
        return self.settings.model or "default"

    def require_engine(self) -> ChatEngine:
        if self.engine is None:
            raise ChatError("the model is still loading; wait for it (see the status line)")
        return self.engine

    def reserve(self) -> int:
        engine = self.require_engine()
        return reply_reserve(self.options().max_new_tokens, engine.n_positions)

    # -- conversations ----------------------------------------------------------------------
    def new(self) -> None:
        """Start a new conversation with the settings given at start-up (model kept)."""
        self.saved.forget()  # first: the reset settings are not the old conversation's
        self.setup.reset()
        self.thread = []
        self.warning = ""

    def open(self, conversation_id: int) -> ConversationRecord:
        """Show a saved conversation with its settings; the caller loads its model if needed."""
        self._require_store()
        record, read = self.saved.open(conversation_id)
        self.thread = linked_messages(read.messages)
        problems = [*record.problems, *read.problems]
        self.warning = describe_damage(record.id, problems) if problems else ""
        self.setup.restore(record)
        return record

    def open_last(self) -> ConversationRecord | None:
        self._require_store()
        record = self.saved.last()
        return self.open(record.id) if record else None

    def list_conversations(self, limit: int = 50) -> list[ConversationRecord]:
        self._require_store()
        return self.saved.recent(limit)

    def export_markdown(self) -> str:
        info = ConversationInfo(
            self.conversation_id,
            self.title or (make_title(self.thread[0].content) if self.thread else ""),
            self.model_name,
            self.settings.system,
            self.settings.template,
        )
        return to_markdown(info, self.thread, self.created)

    # -- turns and branches -----------------------------------------------------------------
    def send(self, text: str) -> Reply:
        """Add a user turn (saved at once) and return the reply to stream."""
        if not text.strip():
            raise InputError("nothing to send: type a message first")
        self.require_engine()
        parent = self.thread[-1] if self.thread else None
        user = Message("user", text, meta=self.setup.template_meta(), parent=parent)
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
        if message.id is None:
            return 1, 1
        ids = self.saved.siblings(message.id)
        return (ids.index(message.id) + 1 if message.id in ids else 1), max(len(ids), 1)

    def switch_branch(self, message: Message, step: int) -> bool:
        """Show the previous (-1) or next (+1) sibling of `message`, with its newest branch."""
        if message.id is None or self.conversation_id is None:
            return False
        self._require_store()
        records = self.saved.switch_branch(message.id, step)
        if records is None:
            return False
        self.thread = linked_messages(records)
        return True

    # -- the window -------------------------------------------------------------------------
    def window(self, current: str = "", before: Message | None = None) -> Window | None:
        """The prompt for `current` after the thread (or after the turns before `before`);
        None while no model is loaded."""
        if self.engine is None:
            return None
        thread = self.thread if before is None else self.thread[: self.thread.index(before)]
        return self._window(thread, current, self.template, self.settings.template_values)

    def _window(
        self,
        thread: list[Message],
        current: str,
        template: Template | None,
        values: dict[str, str],
    ) -> Window:
        engine = self.require_engine()
        options = self.options(template)
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
            cut_mode=self.setup.cut_mode(template),
            count=self._counter,
            keep_from=keep_from,
        )

    def _reply_to(self, user: Message) -> Reply:
        template = self.setup.template_for(user)
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

"""What a slash command asks of the UI, as typed values, and the one dispatcher both UIs use.

`run_command` (or, for a key or a command palette entry, the typed function in slash_commands
that the command stands for) does what it can at once and returns one of these; `dispatch` hands
it to the UI's method for it. The Textual screen's methods are coroutines and plain mode's say
whether to read on, so `CommandHandler` is generic in what its methods return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from scribe.engine.chat.conversations import ConversationRecord


@dataclass(frozen=True, kw_only=True)
class UiCommand:
    """What a slash command asks of the UI; `note` is what the UI tells the user of it."""

    note: str = ""


class ShowNote(UiCommand):
    """Nothing to do but show the note (/help, /set, /system, /template, /export, ...)."""


@dataclass(frozen=True, kw_only=True)
class SwitchModel(UiCommand):
    spec: str  # /model NAME: load that model; the chat goes on with it


class NewConversation(UiCommand):
    """/new: the session has begun a new conversation."""


@dataclass(frozen=True, kw_only=True)
class OpenConversation(UiCommand):
    """/history ID opened a saved conversation, which may name another model."""

    record: ConversationRecord
    model: str | None  # the model it asks for (None: the default)
    reload: bool  # that model is not the one loaded now


@dataclass(frozen=True, kw_only=True)
class ShowHistory(UiCommand):
    """/history [WORDS] found something: the app opens its picker on `query`; plain mode prints
    the note, a listing."""

    query: str


@dataclass(frozen=True, kw_only=True)
class SendText(UiCommand):
    text: str  # /read PATH: the file's text is the next turn, sent as it is (never a command)


class Quit(UiCommand):
    pass


R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class CommandHandler(Protocol[R_co]):
    """A UI: one method per command."""

    def show_note(self, command: ShowNote) -> R_co: ...

    def switch_model(self, command: SwitchModel) -> R_co: ...

    def new_conversation(self, command: NewConversation) -> R_co: ...

    def open_conversation(self, command: OpenConversation) -> R_co: ...

    def show_history(self, command: ShowHistory) -> R_co: ...

    def send_text(self, command: SendText) -> R_co: ...

    def quit(self, command: Quit) -> R_co: ...


def dispatch(command: UiCommand, handler: CommandHandler[R]) -> R:
    """Call the handler's method for `command`."""
    methods: dict[type[UiCommand], Callable[[Any], R]] = {
        ShowNote: handler.show_note,
        SwitchModel: handler.switch_model,
        NewConversation: handler.new_conversation,
        OpenConversation: handler.open_conversation,
        ShowHistory: handler.show_history,
        SendText: handler.send_text,
        Quit: handler.quit,
    }
    method = methods.get(type(command))
    if method is None:
        raise TypeError(f"not a UI command: {command!r}")
    return method(command)

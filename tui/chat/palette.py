"""The chat's entries in Textual's command palette (Ctrl+P): the actions of the chat screen, and
the UI commands they stand for (one a template), dispatched as typed commands."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.app import SystemCommand

from scribe.tui.chat import commands as ui
from scribe.tui.chat.keys import KEYS_HELP
from scribe.tui.chat.screens.chat import ChatScreen
from scribe.tui.chat.slash_commands import choose_template, export_conversation, show_help


def chat_commands(chat: ChatScreen) -> Iterator[SystemCommand]:
    def perform(make: Callable[[], ui.UiCommand]) -> Callable[[], None]:
        return lambda: chat.call_later(chat.perform, make)  # on the screen's message loop

    session = chat.session
    yield SystemCommand("New conversation", "Start a new conversation", chat.action_new)
    yield SystemCommand("History", "Open or search saved conversations", chat.action_history)
    yield SystemCommand("Regenerate", "Write the last reply again", chat.action_regenerate)
    yield SystemCommand("Edit turn", "Edit your last (or selected) turn", chat.action_edit)
    yield SystemCommand("Copy reply", "Copy the last reply (OSC 52)", chat.action_copy_reply)
    yield SystemCommand("Copy code block", "Copy the last code block", chat.action_copy_code)
    yield SystemCommand(
        "Export Markdown",
        "Save as Markdown in this folder",
        perform(partial(export_conversation, session)),
    )
    yield SystemCommand("Help", "Slash commands and keys", perform(partial(show_help, KEYS_HELP)))
    from scribe.engine.prompting.templates import list_templates

    for template in list_templates():
        if not template.chat:
            yield SystemCommand(
                f"Template: {template.name}",
                template.description,
                perform(partial(choose_template, session, template.name)),
            )
    yield SystemCommand(
        "Template: none", "Plain chat", perform(partial(choose_template, session, "none"))
    )

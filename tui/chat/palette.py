"""The chat's entries in Textual's command palette (Ctrl+P): the actions of the chat screen, and
one entry a template, run as the slash command that picks it."""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import SystemCommand

from scribe.tui.chat.screens.chat import ChatScreen


def chat_commands(chat: ChatScreen) -> Iterator[SystemCommand]:
    def run(line: str) -> None:
        chat.post_message(ChatScreen.RunCommand(line))

    yield SystemCommand("New conversation", "Start a new conversation", chat.action_new)
    yield SystemCommand("History", "Open or search saved conversations", chat.action_history)
    yield SystemCommand("Regenerate", "Write the last reply again", chat.action_regenerate)
    yield SystemCommand("Edit turn", "Edit your last (or selected) turn", chat.action_edit)
    yield SystemCommand("Copy reply", "Copy the last reply (OSC 52)", chat.action_copy_reply)
    yield SystemCommand("Copy code block", "Copy the last code block", chat.action_copy_code)
    yield SystemCommand(
        "Export Markdown", "Save as Markdown in this folder", lambda: run("/export")
    )
    yield SystemCommand("Help", "Slash commands and keys", lambda: run("/help"))
    from scribe.engine.prompting.templates import list_templates

    for template in list_templates():
        if not template.chat:
            yield SystemCommand(
                f"Template: {template.name}",
                template.description,
                lambda name=template.name: run(f"/template {name}"),
            )
    yield SystemCommand("Template: none", "Plain chat", lambda: run("/template none"))

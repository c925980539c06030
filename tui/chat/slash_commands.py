"""Slash commands, the same in the Textual app and plain mode.

`run_command(session, line)` does what it can at once and returns a `UiCommand` for what the UI
must carry out itself: show a note, load a model in the background, send a file read with /read,
show the history... A bad command or value raises a ScribeError whose message says what is
accepted; nothing reaches the model. The commands a key or the command palette also runs
(`new_conversation`, `open_conversation`, `choose_template`, `export_conversation`, `show_help`)
take typed arguments, so those call them directly, with no line to parse.
"""

from __future__ import annotations

import errno
import shlex
from collections.abc import Callable
from pathlib import Path

from scribe.engine import paths
from scribe.engine.chat.conversations import parse_id
from scribe.engine.chat.markdown import when
from scribe.engine.chat.session import ChatSession
from scribe.engine.errors import InputError
from scribe.engine.files.atomic import atomic_write
from scribe.engine.paths import user_path
from scribe.engine.runtime.options import SETTABLE
from scribe.engine.text_input import read_text_file
from scribe.tui.chat import commands as ui

# name -> (arguments, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "template": ("NAME [key=value ...]", "frame your next turns with a template (none: chat)"),
    "system": ("TEXT", "set the system prompt (default: the chat default; none: no prompt)"),
    "set": (
        "OPTION VALUE",
        "temperature, top_p, top_k, min_p, max_tokens, repetition_penalty, dry_multiplier, seed",
    ),
    "model": ("NAME", "switch to another model (folder, name or hub id)"),
    "new": ("", "start a new conversation"),
    "history": ("[ID | WORDS]", "list saved conversations, open one by id, or search them"),
    "read": ("PATH", "send a text file as your next turn ($input of the current template)"),
    "export": ("[PATH] [--force]", "save this conversation as Markdown (--force: replace)"),
    "help": ("", "list commands and keys"),
    "quit": ("", "leave scribe chat"),
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
OPTION_NAMES = ", ".join(["max_tokens", *SETTABLE[1:]])


def is_command(line: str) -> bool:
    """A line starting with one "/" is a command; "//" sends a message starting with "/"."""
    return line.startswith("/") and not line.startswith("//")


def unescape(line: str) -> str:
    return line[1:] if line.startswith("//") else line


def help_text(keys: str = "") -> str:
    width = max(len(f"/{name} {args}".rstrip()) for name, (args, _) in COMMANDS.items())
    lines = ["Commands:"]
    for name, (args, about) in COMMANDS.items():
        lines.append(f"  {f'/{name} {args}'.rstrip():<{width}}  {about}")
    lines.append("  //TEXT sends TEXT starting with a single /")
    if keys:
        lines += ["", keys]
    return "\n".join(lines)


def run_command(session: ChatSession, line: str, keys: str = "") -> ui.UiCommand:
    name, _, rest = line[1:].strip().partition(" ")
    name, rest = name.lower(), rest.strip()
    if name not in COMMANDS:
        known = ", ".join("/" + n for n in COMMANDS)
        raise InputError(f"unknown command /{name}; commands: {known} (/help explains them)")
    if name == "help":
        return show_help(keys)
    return HANDLERS[name](session, rest)


# -- what the commands do, called with typed arguments: by the parsers below, and by the keys and
# the command palette of the Textual app, which have no line to parse --------------------------
def show_help(keys: str = "") -> ui.ShowNote:
    return ui.ShowNote(note=help_text(keys))


def choose_template(
    session: ChatSession, name: str, values: dict[str, str] | None = None
) -> ui.ShowNote:
    values = values or {}
    session.set_template(name, values)
    if session.template is None:
        return ui.ShowNote(note="template: none (plain chat)")
    shown = " ".join(f"{k}={v}" for k, v in values.items())
    return ui.ShowNote(
        note=f"template: {name} {shown}".rstrip() + f" ({session.template.description})"
    )


def new_conversation(session: ChatSession) -> ui.NewConversation:
    session.new()
    return ui.NewConversation(note="new conversation")


def open_conversation(session: ChatSession, conversation_id: int) -> ui.OpenConversation:
    record = session.open(conversation_id)
    text = f"opened conversation {record.id}: {record.title}"
    if session.warning:
        text += f"\nwarning: {session.warning}"
    loaded = session.engine.spec if session.engine else None
    model = session.settings.model
    return ui.OpenConversation(note=text, record=record, model=model, reload=model != loaded)


def export_conversation(
    session: ChatSession, path: Path | None = None, force: bool = False
) -> ui.ShowNote:
    """Write the conversation as Markdown to `path` (a folder: a file named after it in there;
    None: that file in the current folder). An existing file is replaced only with `force`; the
    text is written beside it and moved into place whole, owner-only (0600)."""
    if not session.thread:
        raise InputError("nothing to export yet: this conversation is empty")
    name = f"scribe-chat-{session.conversation_id or 'new'}.md"
    path = path or Path(name)
    try:
        path = path.absolute()  # the folder we run in may be gone (OSError)
        if path.is_dir():
            path = path / name
        if path.exists() and not force:
            raise InputError(
                f"/export: {path} already exists; /export {path} --force replaces it, or give "
                "another path"
            )
        if not path.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, "its folder does not exist")
        with paths.private_umask():  # an export is as private as the conversation it holds
            atomic_write(path, session.export_markdown())
    except OSError as err:
        reason = "the disk is full; free some space" if err.errno in DISK_FULL else err.strerror
        raise InputError(
            f"/export: cannot write {path} ({reason}); nothing was replaced: give another path"
        ) from None
    return ui.ShowNote(note=f"exported to {path}")


# -- the parsers: one a command, from the rest of its line ---------------------------------------


def _usage(name: str) -> str:
    return f"usage: /{name} {COMMANDS[name][0]}".rstrip()


def _cmd_template(session: ChatSession, rest: str) -> ui.UiCommand:
    if not rest:
        from scribe.engine.prompting.templates import list_templates

        current = session.template.name if session.template else "none (plain chat)"
        names = ", ".join(t.name for t in list_templates() if not t.chat)
        return ui.ShowNote(
            note=f"template: {current}\navailable: {names}, none\n{_usage('template')}"
        )
    try:
        words = shlex.split(rest)
    except ValueError as err:
        raise InputError(
            f'/template: {err}; quote values with spaces: style="very formal"'
        ) from None
    name, values = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InputError(f"/template: '{word}' is not key=value; {_usage('template')}")
        values[key] = value
    return choose_template(session, name, values)


def _cmd_system(session: ChatSession, rest: str) -> ui.UiCommand:
    if not rest:
        current = session.system_prompt() or "(none)"
        return ui.ShowNote(note=f"system prompt: {current}\n{_usage('system')}; default; none")
    if rest == "default":
        session.set_system(None)
    elif rest == "none":
        session.set_system("")
    else:
        session.set_system(rest)
    return ui.ShowNote(note=f"system prompt: {session.system_prompt() or '(none)'}")


def _cmd_set(session: ChatSession, rest: str) -> ui.UiCommand:
    parts = rest.split()
    if not parts:
        return ui.ShowNote(note=f"options: {describe_options(session)}\n{_usage('set')}")
    if len(parts) != 2:
        raise InputError(
            f"/set needs an option and a value, e.g. /set temperature 0.5; options: {OPTION_NAMES}"
        )
    key, value = session.set_option(parts[0], parts[1])
    return ui.ShowNote(note=f"{parts[0]} = {value}")


def _cmd_model(session: ChatSession, rest: str) -> ui.UiCommand:
    if not rest:
        return ui.ShowNote(note=f"model: {session.model_name}\n{_usage('model')}")
    if rest.startswith("~"):
        user_path(rest, "/model")  # an unknown ~user: one note, not a crash while loading
    return ui.SwitchModel(spec=rest, note=f"loading model {rest}…")


def _cmd_new(session: ChatSession, rest: str) -> ui.UiCommand:
    return new_conversation(session)


def _cmd_history(session: ChatSession, rest: str) -> ui.UiCommand:
    if rest.isascii() and rest.isdigit():
        return open_conversation(session, parse_id(rest, "/history ID"))
    if rest:
        assert session.store is not None
        hits = session.store.search(rest)
        if not hits:
            return ui.ShowNote(note=f"no saved conversation mentions '{rest}'")
        lines = [
            f"{h.conversation_id:>5}  {when(h.updated)}  {h.title}\n       {h.bracketed()}"
            for h in hits
        ]
        return _listing(rest, lines)
    records = session.list_conversations(20)
    if not records:
        return ui.ShowHistory(query="", note="no saved conversations yet")
    lines = [f"{r.id:>5}  {when(r.updated)}  {r.message_count:>3} msgs  {r.title}" for r in records]
    return _listing("", lines)


def _listing(query: str, lines: list[str]) -> ui.ShowHistory:
    return ui.ShowHistory(query=query, note="\n".join(lines) + "\nopen one with /history ID")


def _cmd_read(session: ChatSession, rest: str) -> ui.UiCommand:
    if not rest:
        raise InputError(f"/read needs a file; {_usage('read')}")
    path = user_path(rest, "/read")
    text = read_text_file(path)
    where = f"$input of template {session.template.name}" if session.template else "your turn"
    return ui.SendText(text=text, note=f"read {path} ({len(text)} characters) as {where}")


def _cmd_export(session: ChatSession, rest: str) -> ui.UiCommand:
    if not session.thread:  # before the path: an empty chat says so whatever the path
        raise InputError("nothing to export yet: this conversation is empty")
    force = rest == "--force" or rest.endswith(" --force")
    if force:
        rest = rest.removesuffix("--force").rstrip()
    return export_conversation(session, user_path(rest, "/export") if rest else None, force)


def _cmd_quit(session: ChatSession, rest: str) -> ui.UiCommand:
    return ui.Quit()


def describe_options(session: ChatSession) -> str:
    o = session.options()
    seed = f" seed {o.seed}" if o.seed is not None else ""
    return (
        f"temp {o.temperature:g} top_p {o.top_p:g} top_k {o.top_k} "
        f"max {o.max_new_tokens} rep {o.repetition_penalty:g}{seed}"
    )


HANDLERS: dict[str, Callable[[ChatSession, str], ui.UiCommand]] = {
    "template": _cmd_template,
    "system": _cmd_system,
    "set": _cmd_set,
    "model": _cmd_model,
    "new": _cmd_new,
    "history": _cmd_history,
    "read": _cmd_read,
    "export": _cmd_export,
    "quit": _cmd_quit,
}


def chat_wording(error: str) -> str:
    """An engine error about a model, worded for a chat user: the flag is a command here."""
    return error.replace("pass --model", "use /model").replace("--model", "/model")


def model_failed(session: ChatSession, spec: str | None, error: str) -> str:
    """One line for a /model (or a reopened conversation's model) that did not load; the model
    loaded before, if any, goes on answering, and the line says so."""
    line = f"model {spec or '(default)'} did not load: {chat_wording(error)}"
    if session.engine is not None:
        line += f"; still using {session.model_name}"
    return line

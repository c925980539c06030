"""`scribe chat`: multi-turn writing dialogue, in the Textual app or (no terminal, or --plain) in
line mode. Light at import: the engine and UIs are imported inside `run`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from scribe.tui.common_args import (
    add_command,
    add_generation_args,
    add_model_arg,
    add_template_args,
    option_overrides,
)

if TYPE_CHECKING:
    from scribe.engine.chat.conversations import ConversationStore
    from scribe.engine.chat.session import ChatSession, Settings

SUMMARY = "chat with a model (Textual app; --plain for line mode)"
DESCRIPTION = (
    "Chat with a local model. Enter sends, Ctrl+J adds a line, Esc stops a reply, "
    "Ctrl+Q quits; /help lists the slash commands. Conversations are saved in the "
    "data dir; see `scribe log`."
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "chat", SUMMARY, DESCRIPTION)
    add_model_arg(parser)
    add_template_args(parser, "frame your turns with a template")
    parser.add_argument("--system", metavar="TEXT", help="the system prompt for this conversation")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "-c", "--continue", dest="resume", action="store_true", help="reopen the last conversation"
    )
    # Checked in `run`: a bad id is one clear line, not argparse's usage text.
    which.add_argument("--id", metavar="ID", help="reopen conversation ID (scribe log)")
    parser.add_argument(
        "--plain", action="store_true", help="line mode (automatic when not on a terminal)"
    )
    add_generation_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scribe.engine.chat.conversations import ConversationStore, clean_text, parse_id
    from scribe.engine.chat.session import Settings
    from scribe.engine.errors import InputError
    from scribe.engine.runtime.options import GenerationOptions

    conversation_id = parse_id(args.id, "--id") if args.id is not None else None
    overrides = {k: v for k, v in option_overrides(args).items() if v is not None}
    stop = overrides.pop("stop", None)
    GenerationOptions().updated(**overrides)  # a bad flag value fails here, with its message
    # Undecodable bytes in argv (surrogateescape) become U+FFFD: they reach the tokenizer and
    # the database, which need real text. --model stays as typed: it may be a path.
    system = clean_text(args.system) if args.system is not None else None
    settings = Settings(
        model=args.model,
        system=system,
        template=clean_text(args.template) if args.template else args.template,
        template_values={clean_text(key): clean_text(value) for key, value in args.param},
        options=overrides,
    )
    if args.param and not args.template:
        raise InputError("-p sets template variables; name the template with -t NAME")
    store = ConversationStore()
    try:
        session = _session(store, settings, args.precision)
        if stop:
            session.settings.options["stop"] = tuple(clean_text(text) for text in stop)
        if args.resume or conversation_id is not None:
            _resume(session, conversation_id, args.model, settings, overrides)
        plain = args.plain or not (sys.stdin.isatty() and sys.stdout.isatty())
        if not plain and _dumb_terminal():
            print(
                f"scribe: this terminal (TERM={os.environ['TERM']}) cannot show the chat app; "
                "using line mode (--plain)",
                file=sys.stderr,
                flush=True,
            )
            plain = True
        if plain:
            from scribe.tui.chat.plain import run_plain

            return run_plain(session)
        from scribe.tui.chat.app import ChatApp

        app = ChatApp(session)
        app.run()
        return app.return_code or 0
    finally:
        store.close()


def _session(store: ConversationStore, settings: Settings, precision: str) -> ChatSession:
    from scribe.engine.chat.engine import load_engine
    from scribe.engine.chat.session import ChatSession

    return ChatSession(store, loader=lambda spec: load_engine(spec, precision), settings=settings)


def _resume(
    session: ChatSession,
    conversation_id: int | None,
    model: str | None,
    given: Settings,
    overrides: dict[str, Any],
) -> None:
    """Open conversation `conversation_id` (None: the last one); flags given now override what
    it saved."""
    from scribe.engine.errors import InputError

    record = session.open(conversation_id) if conversation_id else session.open_last()
    if record is None:
        raise InputError("no saved conversation to continue yet; start one with scribe chat")
    if model:
        session.settings.model = model
    if given.system is not None:
        session.set_system(given.system)
    if given.template:
        session.set_template(given.template, given.template_values)
    for key, value in overrides.items():
        session.set_option(key, value)


def _dumb_terminal() -> bool:
    """A terminal that cannot move the cursor: the Textual app would print escape codes."""
    return os.environ.get("TERM", "") in ("dumb", "unknown")

"""`scribe chat`: multi-turn writing dialogue, in the Textual app or (no terminal, or --plain) in
line mode. Light at import: the engine and UIs are imported inside `run`."""

from __future__ import annotations

import argparse
import sys

from scribe.tui.common_args import (
    add_generation_args,
    add_model_arg,
    add_template_args,
    option_overrides,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "chat",
        help="chat with a model (Textual app; --plain for line mode)",
        description=(
            "Chat with a local model. Enter sends, Ctrl+J adds a line, Esc stops a reply, "
            "Ctrl+Q quits; /help lists the slash commands. Conversations are saved in the "
            "data dir; see `scribe log`."
        ),
    )
    add_model_arg(parser)
    add_template_args(parser, "frame your turns with a template")
    parser.add_argument("--system", metavar="TEXT", help="the system prompt for this conversation")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "-c", "--continue", dest="resume", action="store_true", help="reopen the last conversation"
    )
    which.add_argument("--id", type=int, metavar="ID", help="reopen conversation ID (scribe log)")
    parser.add_argument(
        "--plain", action="store_true", help="line mode (automatic when not on a terminal)"
    )
    add_generation_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scribe.engine.chat_session import ChatSession, Settings
    from scribe.engine.conversations import ConversationStore
    from scribe.engine.errors import InputError
    from scribe.engine.options import GenerationOptions

    overrides = {k: v for k, v in option_overrides(args).items() if v is not None}
    stop = overrides.pop("stop", None)
    GenerationOptions().updated(**overrides)  # a bad flag value fails here, with its message
    settings = Settings(
        model=args.model,
        system=args.system,
        template=args.template,
        template_values={key: value for key, value in args.param},
        options=overrides,
    )
    if args.param and not args.template:
        raise InputError("-p sets template variables; name the template with -t NAME")
    store = ConversationStore()
    from scribe.engine.chat_engine import load_engine

    precision = args.precision
    session = ChatSession(
        store, loader=lambda spec: load_engine(spec, precision), settings=settings
    )
    if stop:
        session.settings.options["stop"] = tuple(stop)
    if args.resume or args.id is not None:
        record = session.open(args.id) if args.id is not None else session.open_last()
        if record is None:
            raise InputError("no saved conversation to continue yet; start one with scribe chat")
        # Flags given now override what the conversation saved.
        if args.model:
            session.settings.model = args.model
        if args.system is not None:
            session.set_system(args.system)
        if args.template:
            session.set_template(args.template, settings.template_values)
        for key, value in overrides.items():
            session.set_option(key, value)
    plain = args.plain or not (sys.stdin.isatty() and sys.stdout.isatty())
    try:
        if plain:
            from scribe.tui.plain_chat import run_plain

            return run_plain(session)
        from scribe.tui.chat_app import ChatApp

        app = ChatApp(session)
        app.run()
        return app.return_code or 0
    finally:
        store.close()

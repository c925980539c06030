"""`scribe log`: the saved conversations. `-q TEXT` searches them, `--md ID` prints one as
Markdown (pipe it to a file or a pager)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scribe.engine.chat.conversations import ConversationStore

from scribe.tui.common_args import add_command

SUMMARY = "list, search or export saved conversations"
DESCRIPTION = "List saved chat conversations (newest first), search them, or print one."


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "log", SUMMARY, DESCRIPTION)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--query",
        nargs="+",
        metavar="TEXT",
        help="conversations whose text has every word of TEXT",
    )
    # Ids and counts are checked in `run`, so a bad one is one clear line (not argparse usage).
    group.add_argument("--md", metavar="ID", help="print conversation ID as Markdown")
    parser.add_argument("-n", "--limit", default="30", metavar="N", help="at most N rows")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scribe.engine.chat.conversations import (
        ConversationStore,
        clean_text,
        default_path,
        parse_id,
    )
    from scribe.engine.chat.markdown import when

    limit = parse_id(args.limit, "--limit")
    conversation_id = parse_id(args.md, "--md ID") if args.md is not None else None
    if conversation_id is None and not default_path().exists():
        print(
            f"no saved conversations yet ({default_path()} does not exist); start one with "
            "scribe chat"
        )
        return 0
    store = ConversationStore(reading_only=True)  # a read-only data dir can still be listed
    try:
        if conversation_id is not None:
            return _print_markdown(store, conversation_id)
        if args.query is not None:
            return _print_hits(store, clean_text(" ".join(args.query)), limit)
        records = store.list_conversations(limit)
        if not records:
            print("no saved conversations yet; start one with scribe chat")
            return 0
        print(f"{'id':>5}  {'updated':<16}  {'msgs':>4}  {'model':<16}  title")
        for r in records:
            model = _short_model(r.model)
            print(f"{r.id:>5}  {when(r.updated)}  {r.message_count:>4}  {model:<16}  {r.title}")
        print(f"(scribe log --md ID prints one; stored in {store.path})")
        return 0
    finally:
        store.close()


def _print_markdown(store: ConversationStore, conversation_id: int) -> int:
    """The conversation's branch as Markdown; a damaged one prints what could be read, warns in
    one line on stderr and exits 1."""
    from scribe.engine.chat.conversations import describe_damage
    from scribe.engine.chat.markdown import to_markdown

    record = store.get_conversation(conversation_id)
    thread = store.read_thread(record.id)
    print(to_markdown(record, thread.messages, record.created), end="")
    if not thread.problems:
        return 0
    sys.stdout.flush()
    warning = describe_damage(record.id, thread.problems)
    print(f"scribe: warning: {warning}", file=sys.stderr, flush=True)
    return 1


def _print_hits(store: ConversationStore, query: str, limit: int) -> int:
    from scribe.engine.chat.markdown import when

    hits = store.search(query, limit)
    if not hits:
        print(f"no conversation mentions '{query}'")
        return 1
    for hit in hits:
        print(f"{hit.conversation_id:>5}  {when(hit.updated)}  {hit.title}")
        print(f"       {hit.bracketed()}")
    return 0


def _short_model(spec: str | None) -> str:
    name = (spec or "default").rstrip("/").rsplit("/", 1)[-1]
    return name if len(name) <= 16 else name[:15] + "…"

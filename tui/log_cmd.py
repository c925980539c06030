"""`scribe log`: the saved conversations. `-q TEXT` searches them, `--md ID` prints one as
Markdown (pipe it to a file or a pager)."""

from __future__ import annotations

import argparse
import time


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "log",
        help="list, search or export saved conversations",
        description="List saved chat conversations (newest first), search them, or print one.",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--query", metavar="TEXT", help="conversations whose text has TEXT")
    group.add_argument("--md", type=int, metavar="ID", help="print conversation ID as Markdown")
    parser.add_argument("-n", "--limit", type=int, default=30, metavar="N", help="at most N rows")
    parser.set_defaults(func=run)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def run(args: argparse.Namespace) -> int:
    from scribe.engine.chat_export import to_markdown
    from scribe.engine.conversations import ConversationStore, default_path
    from scribe.engine.errors import InputError

    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    if args.md is None and not default_path().exists():
        print(
            f"no saved conversations yet ({default_path()} does not exist); start one with "
            "scribe chat"
        )
        return 0
    store = ConversationStore()
    try:
        if args.md is not None:
            record = store.get_conversation(args.md)
            print(to_markdown(record, store.thread(record.id), record.created), end="")
            return 0
        if args.query is not None:
            hits = store.search(args.query, args.limit)
            if not hits:
                print(f"no conversation mentions '{args.query}'")
                return 1
            for hit in hits:
                print(f"{hit.conversation_id:>5}  {_when(hit.updated)}  {hit.title}")
                print(f"       {hit.snippet}")
            return 0
        records = store.list_conversations(args.limit)
        if not records:
            print("no saved conversations yet; start one with scribe chat")
            return 0
        print(f"{'id':>5}  {'updated':<16}  {'msgs':>4}  {'model':<16}  title")
        for r in records:
            model = _short_model(r.model)
            print(f"{r.id:>5}  {_when(r.updated)}  {r.message_count:>4}  {model:<16}  {r.title}")
        print(f"(scribe log --md ID prints one; stored in {store.path})")
        return 0
    finally:
        store.close()


def _short_model(spec: str | None) -> str:
    name = (spec or "default").rstrip("/").rsplit("/", 1)[-1]
    return name if len(name) <= 16 else name[:15] + "…"

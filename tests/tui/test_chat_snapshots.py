"""Snapshots (pytest-textual-snapshot) of the chat app's main screens at 100x30, against the
scripted engine. Update with `pytest tests/tui/test_chat_snapshots.py --snapshot-update` and look
at the SVGs in __snapshots__/ before committing them."""

from __future__ import annotations

import threading
import time

import pytest

from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.tui.chat.app import ChatApp
from tests.tui.chat_fakes import FakeEngine, FakeLoader

# Rendering SVGs cost the quick tier about 6 s (it stays under 90 s); the full suite runs them.
pytestmark = pytest.mark.slow

SIZE = (100, 30)
REPLIES = [
    "The lighthouse keeper counted the ships each night.",
    "She wrote the letter by **candlelight**, slowly.",
    "A draft:\n\n```text\nThe sea was calm.\n```",
    "Rain fell on the harbour all afternoon.",
]


class SnapshotApp(ChatApp):
    """Lets a model load held by `gate` finish when the snapshot harness closes the app."""

    gate: threading.Event | None = None

    def exit(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if self.gate is not None:
            self.gate.set()
        super().exit(*args, **kwargs)


def make(gate: threading.Event | None = None, n_positions: int = 160) -> ChatApp:
    engine = FakeEngine(REPLIES, n_positions=n_positions, name="tiny-model")
    session = ChatSession(ConversationStore(), FakeLoader(engine, gate), Settings(system="Hi."))
    app = SnapshotApp(session)
    app.gate = gate
    return app


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def say(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.chat.prompt.text = text
    await pilot.press("enter")
    await settle(pilot)


def test_long_conversation_with_dimmed_turns_and_meter(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.chat.prompt.cursor_blink = False
        await settle(pilot)
        for turn in range(4):
            await say(pilot, f"Turn {turn}: " + " ".join(["a line of my draft"] * 4))
        await pilot.press("ctrl+r")  # a regenerated reply shows its branch marker
        await settle(pilot)
        pilot.app.chat.conversation.scroll_home(animate=False)
        await pilot.pause()

    assert snap_compare(make(), terminal_size=SIZE, run_before=run_before)


def test_loading_model_while_typing(snap_compare) -> None:  # type: ignore[no-untyped-def]
    gate = threading.Event()
    app = make(gate)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.chat.prompt.cursor_blink = False
        await pilot.press(*"Typing while the model loads")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_and_template_status(snap_compare) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        pilot.app.chat.prompt.cursor_blink = False
        await settle(pilot)
        await say(pilot, "/template rewrite style=plain")
        await say(pilot, "/set temperature 0.3")
        await say(pilot, "/help")

    assert snap_compare(make(n_positions=1024), terminal_size=SIZE, run_before=run_before)


def test_history_picker(snap_compare, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TZ", "UTC")  # the picker shows local times
    time.tzset()
    store = ConversationStore()
    for n, title in enumerate(["Notes on the lighthouse", "A letter by candlelight", "Rain"]):
        cid = store.create_conversation(model="tiny-model")
        first = store.add_message(cid, None, "user", title)
        store.add_message(cid, first, "assistant", f"reply {n}")
        stamp = 1_750_000_000 + n * 3600  # fixed times: the snapshot shows them
        store.db.execute(
            "UPDATE conversations SET updated = ?, created = ? WHERE id = ?", (stamp, stamp, cid)
        )
    app = make()

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        monkeypatch.undo()
        time.tzset()

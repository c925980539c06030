"""The Textual chat app driven by a pilot (App.run_test) against a scripted engine.

Gates in the fake engine hold a reply or a model load at a known point, so nothing here depends
on timing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from textual import events

from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.tui.chat.app import ChatApp
from scribe.tui.chat.screens.history import HistoryScreen
from scribe.tui.chat.widgets import Note, WindowDivider
from tests.tui.chat_fakes import FakeEngine, FakeLoader

SIZE = (100, 30)
pytestmark = pytest.mark.anyio


def make_app(
    replies: list[str] | None = None,
    gate: threading.Event | None = None,
    n_positions: int = 1024,
    **settings,
) -> tuple[ChatApp, FakeEngine, ChatSession]:
    engine = FakeEngine(replies or ["Hello **there**, writer.", "A second answer."], n_positions)
    session = ChatSession(ConversationStore(), FakeLoader(engine, gate), Settings(**settings))
    return ChatApp(session), engine, session


async def ready(app: ChatApp, pilot) -> None:  # type: ignore[no-untyped-def]
    await app.workers.wait_for_complete()
    await pilot.pause()


async def say(app: ChatApp, pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    app.chat.prompt.text = text
    await pilot.press("enter")
    await ready(app, pilot)


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 120)  # a hang guard, not a timing assertion


def status(app: ChatApp) -> str:
    return str(app.query_one("#status").render()) + " " + str(app.query_one("#meter").render())


def notices(app: ChatApp) -> list[str]:
    return app.notices


async def test_typed_message_streams_a_reply_and_is_saved() -> None:
    app, engine, session = make_app(replies=["one two three four"])
    engine.hold_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press(*"Hi there")
        await pilot.press("enter")
        await wait_for(engine.holding)
        await pilot.pause()
        user, reply = app.chat.message_views()
        assert user.message.content == "Hi there" and app.chat.prompt.text == ""
        assert reply.message.content == "one two"  # streamed so far
        assert "writing… (Esc stops)" in reply.header()
        assert "replying · Esc stops" in status(app)
        engine.release.set()
        await ready(app, pilot)
        assert reply.message.content == "one two three four"
        assert reply.header() == "Assistant"
    saved = session.store.thread(session.conversation_id)
    assert [(m.role, m.content) for m in saved] == [
        ("user", "Hi there"),
        ("assistant", "one two three four"),
    ]


async def test_status_shows_the_last_replys_speed_and_ending() -> None:
    """After each reply the status line has its tokens/s and why it ended (the Stream's stats);
    while the next is written it says so instead, and a new conversation clears them."""
    app, engine, session = make_app(replies=["one two three four five", "six seven eight"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert "tok/s" not in status(app)
        await say(app, pilot, "Hi")
        assert "│ 20.0 tok/s, ended │" in status(app)
        engine.hold_after = 1
        await say(app, pilot, "/set max_tokens 2")
        app.chat.prompt.text = "Again"
        await pilot.press("enter")
        await wait_for(engine.holding)
        await pilot.pause()
        assert "tok/s" not in status(app) and "replying · Esc stops" in status(app)
        engine.release.set()
        await ready(app, pilot)
        assert "20.0 tok/s, max tokens" in status(app)
        await pilot.press("ctrl+n")
        await ready(app, pilot)
        assert "tok/s" not in status(app)


async def test_escape_stops_the_reply_and_keeps_it_marked() -> None:
    app, engine, session = make_app(replies=["a long reply that goes on and on"])
    engine.hold_after = 3
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "Tell me a story"
        await pilot.press("enter")
        await wait_for(engine.holding)
        await pilot.press("escape")
        engine.release.set()
        await ready(app, pilot)
        view = app.chat.message_views()[-1]
        assert view.message.status == "stopped" and view.message.content == "a long reply"
        assert "■ stopped" in view.header()
        assert not app.chat.generating and "replying" not in status(app)
        # The app is still usable afterwards.
        await say(app, pilot, "Another")
        assert len(app.chat.message_views()) == 4
    saved = session.store.thread(session.conversation_id)
    assert [(m.content, m.status) for m in saved[:2]] == [
        ("Tell me a story", "complete"),
        ("a long reply", "stopped"),
    ]


@pytest.mark.slow  # the quick tier's budget: the heaviest pilot runs
async def test_typing_works_while_the_model_loads_and_the_message_waits() -> None:
    gate = threading.Event()
    app, engine, _ = make_app(gate=gate)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "loading model (default)…" in status(app)
        await pilot.press(*"Written while loading")
        assert app.chat.prompt.text == "Written while loading"
        await pilot.press("enter")
        await pilot.pause()
        assert engine.prompts == [] and app.chat.message_views() == []
        assert any("still loading" in n for n in notices(app))
        gate.set()
        await ready(app, pilot)
        await ready(app, pilot)
        assert "loading" not in status(app) and "fake-model" in status(app)
        assert [v.message.content for v in app.chat.message_views()] == [
            "Written while loading",
            "Hello **there**, writer.",
        ]


async def test_newline_key_and_paste_keep_newlines_without_sending() -> None:
    app, engine, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("a", "ctrl+j", "b")
        assert app.chat.prompt.text == "a\nb"
        app.post_message(events.Paste("\nline one\nline two"))  # as the driver does
        await pilot.pause()
        assert app.chat.prompt.text == "a\nb\nline one\nline two" and engine.prompts == []
        await pilot.press("enter")
        await ready(app, pilot)
        assert app.chat.message_views()[0].message.content == "a\nb\nline one\nline two"
        assert "Writer: a\nb\nline one\nline two" in engine.prompts[0]


async def test_regenerate_keeps_the_old_reply_as_a_branch() -> None:
    app, engine, session = make_app(replies=["first take", "second take"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "Write a title")
        await pilot.press("ctrl+r")
        await ready(app, pilot)
        views = app.chat.message_views()
        assert [v.message.content for v in views] == ["Write a title", "second take"]
        assert "‹2/2›" in views[1].header()
        views[1].focus()
        await pilot.press("left")
        await ready(app, pilot)
        assert [v.message.content for v in app.chat.message_views()] == [
            "Write a title",
            "first take",
        ]
        assert "‹1/2›" in app.chat.message_views()[1].header()
    assert len(session.store.messages(session.conversation_id)) == 3


async def test_edit_an_earlier_turn_forks() -> None:
    app, engine, session = make_app(replies=["r1", "r2", "r3"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "first question")
        await say(app, pilot, "second question")
        app.chat.message_views()[0].focus()
        await pilot.press("f2")
        assert app.chat.prompt.text == "first question" and "editing a turn" in status(app)
        app.chat.prompt.text = "better first question"
        await pilot.press("enter")
        await ready(app, pilot)
        assert [v.message.content for v in app.chat.message_views()] == [
            "better first question",
            "r3",
        ]
        assert "‹2/2›" in app.chat.message_views()[0].header()
        # Esc cancels an edit.
        await pilot.press("f2")
        await pilot.press("escape")
        assert app.chat.editing is None and app.chat.prompt.text == ""
    assert len(session.store.messages(session.conversation_id)) == 6


@pytest.mark.slow  # the quick tier's budget: the heaviest pilot runs
async def test_slash_commands_and_bad_values_never_reach_the_model() -> None:
    app, engine, session = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "/set temperature 0.2")
        assert session.options().temperature == 0.2 and "temp 0.2" in status(app)
        await say(app, pilot, "/set warmth 1")
        assert any("unknown option 'warmth'; accepted: max_tokens" in n for n in notices(app))
        assert app.chat.prompt.text == "/set warmth 1"  # restored, to fix and resend
        await say(app, pilot, "/frobnicate")
        assert any("unknown command /frobnicate; commands: /template" in n for n in notices(app))
        await say(app, pilot, "/template summarize")
        assert "template summarize" in status(app)
        await say(app, pilot, "/template rewrite tone=dry")
        assert any("has no variable 'tone'; its variables: style" in n for n in notices(app))
        await say(app, pilot, "/help")
        notes = [str(n.render()) for n in app.query(Note)]
        assert any("/template NAME [key=value ...]" in n and "Ctrl+J" in n for n in notes)
        assert engine.prompts == []
        await say(app, pilot, "The tide rose over the harbour wall.")
        assert engine.prompts[-1].endswith("The tide rose over the harbour wall.\n\nTL;DR:")
        assert engine.options[-1].temperature == 0.2


async def test_read_a_file_as_the_next_turn(tmp_path) -> None:  # type: ignore[no-untyped-def]
    draft = tmp_path / "draft.txt"
    draft.write_text("Chapter one.\nIt rained.", encoding="utf-8")
    app, engine, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, f"/read {tmp_path / 'missing.txt'}")
        assert any("missing.txt: no such file" in n for n in notices(app))
        await say(app, pilot, f"/read {draft}")
        await ready(app, pilot)
        assert app.chat.message_views()[0].message.content == "Chapter one.\nIt rained."
        assert "Writer: Chapter one.\nIt rained.\n\nAssistant:" in engine.prompts[0]


async def test_history_picker_searches_and_opens_a_conversation() -> None:
    app, engine, session = make_app(replies=["about whales", "about ships"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "Tell me about whales")
        first = session.conversation_id
        await pilot.press("ctrl+n")
        await ready(app, pilot)
        assert app.chat.message_views() == []
        await say(app, pilot, "Tell me about ships")
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press(*"whales")
        await pilot.pause()
        options = app.screen.query_one("#history-list")
        assert options.option_count == 1
        await pilot.press("enter")
        await ready(app, pilot)
        assert not isinstance(app.screen, HistoryScreen)
        assert session.conversation_id == first
        assert [v.message.content for v in app.chat.message_views()] == [
            "Tell me about whales",
            "about whales",
        ]


async def test_copy_reply_and_code_block() -> None:
    reply = "Try this:\n\n```python\nprint('hi')\n```\n\nDone."
    app, engine, _ = make_app(replies=[reply])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("f4")
        assert any("no code block" in n for n in notices(app))
        await say(app, pilot, "code please")
        await pilot.press("f3")
        assert app.clipboard == reply.replace("\n\n", "\n\n")
        await pilot.press("f4")
        assert app.clipboard == "print('hi')\n"


async def test_turns_outside_the_window_are_dimmed_with_a_divider() -> None:
    app, engine, session = make_app(replies=["a short reply"], n_positions=200, system="Hi.")
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        for turn in range(5):
            await say(app, pilot, f"turn {turn} " + " ".join(["text"] * 40))
        window = session.window()
        assert window is not None and window.first_included > 0
        views = app.chat.message_views()
        outside = [v for v in views if v.has_class("-outside")]
        assert len(outside) == 2 * window.first_included
        assert outside == views[: len(outside)]
        assert "outside the context window" in outside[0].header()
        dividers = list(app.query(WindowDivider))
        assert len(dividers) == 1
        text = str(dividers[0].render())
        assert f"{window.first_included} earlier turns above are outside" in text
        assert f"tokens {window.used}/200 ({window.reserve})" in status(app)
        assert window.reserve == 50


async def test_model_failure_and_switching_model() -> None:
    app, engine, session = make_app(model="missing-model")
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert "no model (/model NAME)" in status(app)
        assert any("model 'missing-model' not found" in n for n in notices(app))
        await say(app, pilot, "hello?")
        assert engine.prompts == []
        await say(app, pilot, "/model other-model")
        await ready(app, pilot)
        assert session.model_name == "other-model" and "other-model" in status(app)
        await say(app, pilot, "hello again")
        assert len(engine.prompts) == 1


async def test_quit_during_a_reply_saves_it_as_stopped() -> None:
    app, engine, session = make_app(replies=["partial words then more"])
    engine.hold_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        app.chat.prompt.text = "go"
        await pilot.press("enter")
        await wait_for(engine.holding)
        cancel = app.chat.cancel

        def release_once_cancelled() -> None:
            cancel.wait(10)
            engine.release.set()

        threading.Thread(target=release_once_cancelled, daemon=True).start()
        await pilot.press("ctrl+q")
        await ready(app, pilot)
    saved = session.store.thread(session.conversation_id)
    assert [(m.content, m.status) for m in saved] == [
        ("go", "complete"),
        ("partial words", "stopped"),
    ]


async def test_command_palette_has_the_chat_commands() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in (
            "New conversation",
            "History",
            "Regenerate",
            "Edit turn",
            "Copy reply",
            "Copy code block",
            "Export Markdown",
            "Theme",
            "Template: summarize",
        ):
            assert expected in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_palette_entries_dispatch_their_typed_commands() -> None:
    """A palette entry runs its command on the session and shows its note, with no slash
    command line in between."""
    app, _, session = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        commands["Template: summarize"]()
        await pilot.pause()
        assert session.template is not None and session.template.name == "summarize"
        assert "template summarize" in status(app)
        commands["Export Markdown"]()  # nothing to export yet: a notice, the app goes on
        await pilot.pause()
        assert any("nothing to export yet" in n for n in notices(app))
        commands["Template: none"]()
        await pilot.pause()
        assert session.template is None
        notes = [str(n.render()) for n in app.query(Note)]
        assert any("template: none (plain chat)" in n for n in notes)


@pytest.mark.slow  # the quick tier's budget: the heaviest pilot runs
async def test_typing_on_a_selected_turn_goes_to_the_prompt() -> None:
    app, engine, session = make_app(replies=["a reply to copy"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "my question")
        user, reply = app.chat.message_views()
        user.focus()
        await pilot.pause()
        await pilot.press(*"yes e")  # letters were hidden copy/edit keys here
        assert app.focused is app.chat.prompt and app.chat.prompt.text == "yes e"
        assert app.chat.editing is None and app.clipboard == ""
        app.chat.prompt.clear()
        # Enter on a selected turn edits yours, or copies a reply; the footer names it.
        user.focus()
        await pilot.pause()
        assert app.active_bindings["enter"].binding.description == "Edit"
        await pilot.press("enter")
        assert app.chat.editing is user.message and app.chat.prompt.text == "my question"
        await pilot.press("escape")
        reply.focus()
        await pilot.pause()
        assert app.active_bindings["enter"].binding.description == "Copy"
        await pilot.press("enter")
        assert app.clipboard == "a reply to copy" and len(engine.prompts) == 1  # nothing sent


@pytest.mark.slow  # the quick tier's budget: the heaviest pilot runs
async def test_opening_history_from_a_selected_turn_gives_the_prompt_focus() -> None:
    app, _, session = make_app(replies=["about whales", "about ships"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "Tell me about whales")
        await pilot.press("ctrl+n")
        await say(app, pilot, "Tell me about ships")
        app.chat.message_views()[1].focus()
        await pilot.pause()
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press(*"whales", "enter")
        await ready(app, pilot)
        assert app.chat.message_views()[0].message.content == "Tell me about whales"
        assert app.focused is app.chat.prompt
        await pilot.press(*"more")
        assert app.chat.prompt.text == "more"


async def test_continue_opens_scrolled_to_the_latest_turn() -> None:
    store = ConversationStore()
    cid = store.create_conversation()
    parent = None
    for n in range(12):
        role = "user" if n % 2 == 0 else "assistant"
        parent = store.add_message(cid, parent, role, f"turn {n}\n\n" + "word " * 80)
    engine = FakeEngine()
    session = ChatSession(store, FakeLoader(engine), Settings())
    session.open_last()  # what `scribe chat --continue` does before the app starts
    app = ChatApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        conversation = app.chat.conversation
        assert conversation.max_scroll_y > 0
        assert conversation.scroll_y == conversation.max_scroll_y
        last = app.chat.message_views()[-1]
        assert last.region.bottom <= conversation.region.bottom  # the newest turn is in view


def option_lines(app: ChatApp) -> list[str]:
    options = app.screen.query_one("#history-list")
    return ["".join(s.text for s in options.render_line(y)).rstrip() for y in range(4)]


async def test_history_picker_shows_matches_and_brackets_as_typed() -> None:
    app, _, session = make_app(replies=["its lamp [sweeping] the sea"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "Explain [/x] and [bold]tags[/bold]")  # markup-like, and broken
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert "Explain [/x] and [bold]tags[/bold]" in option_lines(app)[0]
        await pilot.press(*"sweeping")
        await pilot.pause()
        lines = option_lines(app)
        assert lines[1].strip() == "its lamp [sweeping] the sea"  # the word is kept
        prompt = app.screen.query_one("#history-list").get_option_at_index(0).prompt
        marked = [prompt.plain[span.start : span.end] for span in prompt.spans]
        assert marked == ["sweeping"]


async def test_notices_show_user_text_with_brackets() -> None:
    app, _, _ = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "/set [/x] 1")
        await pilot.pause()
        assert any("unknown option '[/x]'" in n for n in notices(app))
        await say(app, pilot, "/history [bold]")
        assert app.is_running


async def test_regenerate_from_a_selected_turn_leaves_typing_in_the_prompt() -> None:
    app, _, _ = make_app(replies=["first take", "second take"])
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await say(app, pilot, "Write a title")
        app.chat.message_views()[1].focus()
        await pilot.press("ctrl+r")
        await ready(app, pilot)
        assert app.chat.message_views()[1].message.content == "second take"
        await pilot.press(*"ok")
        assert app.chat.prompt.text == "ok"

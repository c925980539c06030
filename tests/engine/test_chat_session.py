"""Chat logic without a UI: send, stream, stop, regenerate, edit (fork), templates, options,
switching model, reopening, and saving through a locked database."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatError, ChatSession, Settings
from scribe.engine.errors import InputError, TemplateError
from scribe.engine.runtime.stream import Stream
from tests.tui.chat_fakes import FakeEngine, FakeLoader


def make(replies: list[str] | None = None, store: ConversationStore | None = None, **kw):
    engine = FakeEngine(replies or ["First reply here.", "Second reply.", "Third."])
    store = store if store is not None else ConversationStore()
    session = ChatSession(store, FakeLoader(engine), Settings(**kw))
    session.load_model(None)
    return session, engine, store


def test_send_streams_and_saves_both_messages() -> None:
    session, engine, store = make()
    reply = session.send("Hello there")
    deltas = list(reply.stream())
    assert deltas == ["First", " reply", " here."]  # the leading space is dropped
    assert reply.message.content == "First reply here." and reply.message.status == "complete"
    assert engine.prompts[0].endswith("\n\nWriter: Hello there\n\nAssistant:")
    assert engine.prompts[0].startswith("A conversation between a writer")
    saved = store.thread(session.conversation_id)
    assert [(m.role, m.content, m.status) for m in saved] == [
        ("user", "Hello there", "complete"),
        ("assistant", "First reply here.", "complete"),
    ]
    assert store.get_conversation(session.conversation_id).title == "Hello there"


def test_user_turn_is_saved_before_the_reply_ends() -> None:
    session, engine, store = make()
    engine.hold_after = 1
    reply = session.send("Saved first?")
    stream = reply.stream()
    assert next(stream) == "First"
    # A crash now would lose only the reply being generated.
    other = ConversationStore(store.path)
    assert [m.content for m in other.thread(session.conversation_id)] == ["Saved first?"]
    engine.release.set()
    assert list(stream) == [" reply", " here."]


def test_stop_keeps_the_partial_reply_marked_stopped() -> None:
    session, engine, store = make(replies=["one two three four five six"])
    engine.hold_after = 2
    cancel = threading.Event()
    reply = session.send("Go on")
    seen = []
    for delta in reply.stream(cancel):
        seen.append(delta)
        if len(seen) == 2:
            cancel.set()
            engine.release.set()
    assert "".join(seen) == "one two"
    assert reply.message.status == "stopped" and reply.message.content == "one two"
    saved = store.thread(session.conversation_id)[-1]
    assert (saved.content, saved.status) == ("one two", "stopped")
    assert session.thread[-1] is reply.message


def test_regenerate_keeps_the_old_reply_as_a_sibling() -> None:
    session, _, store = make()
    session.send("Write a line").run()
    old = session.thread[-1]
    new = session.regenerate().run()
    assert new.content == "Second reply." and session.thread[-1] is new
    assert [m.content for m in session.thread] == ["Write a line", "Second reply."]
    siblings = store.siblings(new.id)
    assert [s.content for s in siblings] == ["First reply here.", "Second reply."]
    assert session.branch_info(new) == (2, 2)
    assert session.switch_branch(new, -1)
    assert [m.content for m in session.thread] == ["Write a line", old.content]
    assert store.get_conversation(session.conversation_id).head_id == old.id


def test_edit_an_earlier_turn_forks_the_conversation() -> None:
    session, engine, store = make(replies=["r1", "r2", "r3", "r4"])
    session.send("first question").run()
    session.send("second question").run()
    first = session.thread[0]
    reply = session.edit(first, "a better first question")
    reply.run()
    assert [m.content for m in session.thread] == ["a better first question", "r3"]
    assert "second question" not in engine.prompts[-1]
    all_messages = [m.content for m in store.messages(session.conversation_id)]
    assert all_messages == [
        "first question",
        "r1",
        "second question",
        "r2",
        "a better first question",
        "r3",
    ]
    assert session.branch_info(session.thread[0]) == (2, 2)
    session.switch_branch(session.thread[0], -1)
    assert [m.content for m in session.thread] == ["first question", "r1", "second question", "r2"]
    with pytest.raises(ChatError):
        session.edit(session.thread[1], "not mine")


def test_template_frames_the_turn_and_sets_its_options() -> None:
    session, engine, _ = make()
    session.set_template("summarize")
    options = session.options()
    assert options.temperature == 0.3 and options.stop[0] == "\n\n"
    reply = session.send("The tide came in and the boats rose.")
    assert reply.window.prompt.endswith("\n\nThe tide came in and the boats rose.\n\nTL;DR:")
    reply.run()
    assert session.thread[0].meta == {"template": "summarize", "values": {}}
    # A regenerated reply uses the template of its turn, even after switching back to chat.
    session.set_template(None)
    session.regenerate().run()
    assert engine.prompts[-1].endswith("TL;DR:")
    session.set_template("rewrite", {"style": "formal"})
    assert session.send("hi").window.prompt.endswith("rewritten in a formal style: ")


def test_fix_grammar_in_chat_shows_a_checked_answer_whole() -> None:
    """The model's answer is shown when it is a plausible correction, else the proofread text."""
    good = "She goes to the market on Mondays."
    session, _, store = make(replies=[good, "The the market is a genus of fish."])
    session.set_template("fix-grammar")
    assert list(session.send("She go to the the market on mondays.").stream()) == [good]
    wandered = list(session.send("She go to the the market on mondays.").stream())
    assert wandered == ["She go to the market on Mondays."]
    saved = store.thread(session.conversation_id)
    assert saved[-1].content == "She go to the market on Mondays."


def test_a_new_conversation_leaves_the_old_ones_settings_saved() -> None:
    session, _, store = make()
    session.set_template("summarize")
    session.send("The tide came in.").run()
    old = session.conversation_id
    session.new()
    assert session.template is None and session.conversation_id is None
    assert store.get_conversation(old).template == "summarize"


def test_bad_template_requests_say_what_is_accepted() -> None:
    session, _, _ = make()
    with pytest.raises(TemplateError, match="no template named 'nope'; available: .*summarize"):
        session.set_template("nope")
    with pytest.raises(InputError, match="has no variable 'colour'; its variables: style"):
        session.set_template("rewrite", {"colour": "red"})
    assert session.template is None


def test_options_are_validated_and_saved_with_the_conversation() -> None:
    session, engine, store = make()
    session.send("hi").run()
    assert session.set_option("temperature", "0.2") == ("temperature", 0.2)
    assert session.set_option("max_tokens", "50") == ("max_new_tokens", 50)
    with pytest.raises(InputError, match="unknown option 'warmth'; accepted: max_tokens"):
        session.set_option("warmth", "1")
    with pytest.raises(InputError, match="top_p must be in"):
        session.set_option("top_p", "3")
    session.send("again").run()
    assert engine.options[-1].temperature == 0.2 and engine.options[-1].max_new_tokens == 50
    saved = store.get_conversation(session.conversation_id)
    assert saved.options == {"temperature": 0.2, "max_new_tokens": 50}


def test_switch_model_and_reopen_with_settings() -> None:
    session, engine, store = make(system="You write haiku.")
    session.send("sea").run()
    session.load_model("other-model")
    assert session.model_name == "other-model"
    session.set_template("continue")
    session.send("more").run()
    again = ChatSession(store, FakeLoader(FakeEngine()))
    record = again.open_last()
    assert record is not None and record.id == session.conversation_id
    assert again.settings.model == "other-model" and again.settings.system == "You write haiku."
    assert again.template is not None and again.template.name == "continue"
    assert [m.content for m in again.thread] == [m.content for m in session.thread]
    assert "# sea" in again.export_markdown() and "You write haiku." in again.export_markdown()


def test_nothing_happens_without_a_model_or_text() -> None:
    session = ChatSession(ConversationStore(), FakeLoader(FakeEngine()))
    with pytest.raises(ChatError, match="still loading"):
        session.send("hi")
    assert session.window() is None
    session.load_model(None)
    with pytest.raises(InputError, match="nothing to send"):
        session.send("   ")
    with pytest.raises(ChatError, match="nothing to regenerate"):
        session.regenerate()


def test_an_engine_failure_keeps_what_was_written() -> None:
    session, engine, store = make()

    def broken(out):
        yield "Half a"
        raise RuntimeError("out of memory")

    engine.answer = lambda prompt, options, cancel=None: Stream(broken)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        session.send("hi").run()
    saved = store.thread(session.conversation_id)
    assert [(m.content, m.status) for m in saved] == [("hi", "complete"), ("Half a", "error")]


def test_messages_wait_out_a_locked_database_and_are_saved_later() -> None:
    path = ConversationStore().path
    session, _, _ = make(store=ConversationStore(path, timeout=0.1))
    session.send("before").run()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    session.send("during the lock").run()
    assert session.save_error is not None and "locked by another scribe" in str(session.save_error)
    assert session.unsaved == 2
    locker.execute("ROLLBACK")
    locker.close()
    session.send("after").run()
    assert session.save_error is None and session.unsaved == 0
    saved = ConversationStore(path).thread(session.conversation_id)
    assert [m.content for m in saved] == [
        "before",
        "First reply here.",
        "during the lock",
        "Second reply.",
        "after",
        "Third.",
    ]

"""Plain (line) mode: the real command through a pipe, and the loop in-process with a scripted
engine for slash commands, multi-line blocks and Ctrl+C."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scribe.engine.chat.conversations import ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.tui.chat import commands as ui
from scribe.tui.chat.plain import PlainChat
from scribe.tui.chat.screens.chat import ChatScreen
from scribe.tui.cli import main
from tests.tui.chat_fakes import FakeEngine, FakeLoader

SCRIBE = [sys.executable, "-m", "scribe.tui.cli"]


def run_scribe(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model is fastest on one thread
    return subprocess.run(
        [*SCRIBE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=180
    )


@pytest.mark.slow
def test_piped_message_gets_a_reply_and_exits_zero(tiny_model_dir: Path) -> None:
    """printf 'Hello there\\n' | scribe chat --plain --model DIR"""
    out = run_scribe(
        ["chat", "--plain", "--model", str(tiny_model_dir), "--seed", "3"], "Hello there\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "no reply printed"
    assert out.stdout.endswith("\n") and "Traceback" not in out.stderr
    assert "loading model" in out.stderr
    store = ConversationStore()
    (record,) = store.list_conversations()
    thread = store.thread(record.id)
    assert [m.role for m in thread] == ["user", "assistant"]
    assert thread[0].content == "Hello there"
    assert thread[1].content == out.stdout.strip()


def test_not_a_terminal_means_plain_and_continue_carries_on(
    tiny_model_dir: Path,
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    """In-process (the model loads without a new Python): no --plain, stdin is not a terminal."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("First line\n"))
    assert main(["chat", "--model", str(tiny_model_dir), "--max-tokens", "5"]) == 0
    first = capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("And then?\n"))
    assert main(["chat", "--continue", "--model", str(tiny_model_dir)]) == 0
    store = ConversationStore()
    (record,) = store.list_conversations()
    assert [m.content for m in store.thread(record.id)][:3] == [
        "First line",
        first.out.strip(),
        "And then?",
    ]
    assert record.options == {"max_new_tokens": 5}  # saved with the conversation, reused


def test_continue_without_a_conversation_is_a_clear_error(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat", "--continue"]) == 2
    assert capsys.readouterr().err.strip() == (
        "scribe: error: no saved conversation to continue yet; start one with scribe chat"
    )


def plain(
    lines: str, engine: FakeEngine | None = None, **settings
) -> tuple[int, str, str, ChatSession]:  # noqa: E501
    engine = engine or FakeEngine(["Reply one.", "Reply two.", "Reply three."])
    session = ChatSession(ConversationStore(), FakeLoader(engine), Settings(**settings))
    out, err = io.StringIO(), io.StringIO()
    code = PlainChat(session, io.StringIO(lines), out, err).run()
    return code, out.getvalue(), err.getvalue(), session


def test_slash_commands_blocks_and_escapes() -> None:
    engine = FakeEngine(["Reply one.", "Reply two.", "Reply three."])
    script = (
        "\n".join(
            [
                "/set temperature 0.1",
                "/set warmth 2",
                "/frobnicate",
                '"""',
                "line one",
                "line two",
                '"""',
                "//etc/hosts is a file",
                "/template summarize",
                "A long story about the sea.",
                "/history",
                "/quit",
                "never sent",
            ]
        )
        + "\n"
    )
    code, out, err, session = plain(script, engine)
    assert code == 0
    assert "temperature = 0.1" in out
    assert "unknown option 'warmth'; accepted: max_tokens" in err
    assert "unknown command /frobnicate" in err
    # The fake's third reply is no summary of the text: summarize's check shows the text's own
    # sentence instead (a text this short is its own summary).
    assert out.count("Reply") == 2
    assert "template: summarize" in out and out.count("A long story about the sea.") == 1
    assert "Writer: line one\nline two\n\nAssistant:" in engine.prompts[0]
    assert "Writer: /etc/hosts is a file" in engine.prompts[1]
    assert engine.prompts[2].endswith("A long story about the sea.\n\nTL;DR:")
    assert all(o.temperature == 0.1 for o in engine.options)
    assert "line one" in out  # /history lists the conversation by its first line
    assert len(engine.prompts) == 3 and "never sent" not in "".join(engine.prompts)


def test_each_reply_notes_its_speed_and_why_it_ended() -> None:
    """One short note on stderr after each reply, from the Stream's stats; stdout keeps only
    the replies."""
    engine = FakeEngine(["one two three four five", "a"])
    code, out, err, _ = plain("First\n/set max_tokens 3\nSecond\nThird\n", engine)
    assert code == 0
    assert out.splitlines() == ["one two three four five", "max_tokens = 3", "a", "one two three"]
    notes = [line for line in err.splitlines() if line.startswith("[")]
    # 4 tokens after the first, 50 ms each; one token has no speed; cut at max_tokens
    assert notes == ["[20.0 tok/s, ended]", "[1 token, ended]", "[20.0 tok/s, max tokens]"]


def test_ctrl_c_stops_the_reply_not_the_program() -> None:
    engine = FakeEngine(["one two three four five", "next reply"])
    engine.hold_after = 2
    session = ChatSession(ConversationStore(), FakeLoader(engine), Settings())
    out, err = io.StringIO(), io.StringIO()
    chat = PlainChat(session, io.StringIO("Go\nAgain\n"), out, err)

    def press_ctrl_c() -> None:
        engine.holding.wait(10)
        cancel = chat.cancel
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl+C
        cancel.wait(10)
        engine.release.set()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    code = chat.run()
    assert code == 0
    assert out.getvalue().splitlines() == ["one two", "next reply"]
    assert "[20.0 tok/s, stopped]" in err.getvalue()  # the fake's 2 tokens, 50 ms apart
    saved = session.store.thread(session.conversation_id)
    assert [(m.content, m.status) for m in saved] == [
        ("Go", "complete"),
        ("one two", "stopped"),
        ("Again", "complete"),
        ("next reply", "complete"),
    ]


def test_read_and_export(tmp_path: Path) -> None:
    draft = tmp_path / "draft.md"
    draft.write_text("My draft text.", encoding="utf-8")
    target = tmp_path / "out.md"
    code, out, err, _ = plain(f"/read {draft}\n/export {target}\n/read {tmp_path}\n")
    assert code == 0
    assert out.splitlines()[0] == "Reply one."
    assert f"exported to {target}" in out
    assert f"{tmp_path}: is a folder; give a text file" in err
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# My draft text.") and "## Assistant\n\nReply one." in text


def test_a_corrupt_database_stops_chat_with_one_line_and_is_kept(
    scribe_home: Path,
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    db = scribe_home / "data" / "conversations.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\x00not sqlite" * 100)
    monkeypatch.setattr(sys, "stdin", io.StringIO("hi\n"))
    assert main(["chat", "--plain", "--model", "unused"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"scribe: error: {db} is not a readable scribe database")
    assert err.count("\n") == 1
    assert db.read_bytes() == b"\x00not sqlite" * 100


def test_one_dispatcher_calls_the_same_method_in_both_uis() -> None:
    samples = [
        ui.ShowNote(note="text"),
        ui.SwitchModel(spec="model"),
        ui.NewConversation(),
        ui.OpenConversation(record=None, model=None, reload=False),  # type: ignore[arg-type]
        ui.ShowHistory(query="words"),
        ui.SendText(text="a file"),
        ui.Quit(),
    ]
    assert {type(c) for c in samples} == set(ui.UiCommand.__subclasses__())

    class Recorder:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return lambda command: (name, command)

    for command in samples:
        name, seen = ui.dispatch(command, Recorder())
        assert seen is command
        assert callable(getattr(PlainChat, name)) and callable(getattr(ChatScreen, name))

"""`scribe log` and `scribe chat --plain` given hostile numbers and text: through the real CLI
(`main`, or a child process for real non-UTF-8 argv bytes), with a scripted engine for chat.
Each bad input is one clear line and a non-zero exit, or is replaced and said so; never a
traceback."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from scribe.engine.chat import engine as chat_engine
from scribe.engine.chat.conversations import MAX_ID, ConversationStore
from scribe.engine.chat.session import ChatSession, Settings
from scribe.tui.chat.plain import PlainChat
from scribe.tui.cli import main
from tests.tui.chat_fakes import FakeEngine, FakeLoader
from tests.tui.cli_run import scribe

BAD_IDS = ["1e23", "-5", "0", "2.5", "abc", "", "١٢", str(MAX_ID + 1), "9" * 5000]


def seed() -> int:
    store = ConversationStore()
    cid = store.create_conversation()
    u = store.add_message(cid, None, "user", "Describe a lighthouse at night")
    store.add_message(cid, u, "assistant", "A white tower, its lamp sweeping the dark sea.")
    store.close()
    return cid


def one_error_line(err: str, starts: str) -> None:
    assert err.startswith(f"scribe: error: {starts}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_conversation_ids_are_one_line(bad: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    seed()
    assert main(["log", f"--md={bad}"]) == 2
    one_error_line(capsys.readouterr().err, f"--md ID must be a whole number from 1 to {MAX_ID}")
    assert main(["log", f"--limit={bad}"]) == 2
    one_error_line(capsys.readouterr().err, "--limit must be a whole number")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat", "--plain", f"--id={bad}"]) == 2
    one_error_line(capsys.readouterr().err, "--id must be a whole number")


def test_the_largest_id_is_looked_up_and_not_found(capsys) -> None:  # type: ignore[no-untyped-def]
    seed()
    assert main(["log", "--md", str(MAX_ID), "-n", str(MAX_ID)]) == 1
    one_error_line(capsys.readouterr().err, f"no conversation with id {MAX_ID}")
    assert main(["log", "--md", " 1 "]) == 0  # spaces around a good id are fine


def test_negative_id_as_a_separate_argument(capsys) -> None:  # type: ignore[no-untyped-def]
    seed()
    assert main(["log", "--md", "-5"]) == 2
    one_error_line(capsys.readouterr().err, "--md ID must be a whole number")


def test_query_of_several_words_searches_them_all(capsys) -> None:  # type: ignore[no-untyped-def]
    cid = seed()
    assert main(["log", "-q", "lamp", "sweeping"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[0] == str(cid)
    assert "its [lamp] [sweeping] the dark sea" in out
    assert main(["log", "-q", "lamp", "volcano"]) == 1
    assert "no conversation mentions 'lamp volcano'" in capsys.readouterr().out


def test_slash_history_with_a_huge_id_is_one_note() -> None:
    engine = FakeEngine(["ok"])
    session = ChatSession(ConversationStore(), FakeLoader(engine), Settings())
    out, err = io.StringIO(), io.StringIO()
    lines = f"/history {'9' * 40}\n/history ²\nhello\n"
    assert PlainChat(session, io.StringIO(lines), out, err).run() == 0
    notes = err.getvalue()
    assert "scribe: /history ID must be a whole number from 1 to" in notes
    assert "Traceback" not in notes and out.getvalue().endswith("ok\n")


@pytest.mark.slow
def test_non_utf8_argv_bytes_through_the_real_command(scribe_home: Path) -> None:
    seed()
    out = scribe("log", "-q", "caf\udce9")  # the child gets the raw byte 0xE9 in its argv
    assert out.returncode == 1 and "Traceback" not in out.stderr.decode()
    assert out.stdout.decode() == "no conversation mentions 'caf\ufffd'\n"
    out = scribe("log", "--md", "\udcff")
    assert out.returncode == 2
    one_error_line(out.stderr.decode(), "--md ID must be a whole number")


def test_plain_chat_replaces_non_utf8_input_bytes_and_says_so() -> None:
    engine = FakeEngine(["Noted."])
    session = ChatSession(ConversationStore(), FakeLoader(engine), Settings())
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait\n\xff\xfe\n/set temperature 0.5\n"))
    out, err = io.StringIO(), io.StringIO()
    assert PlainChat(session, stdin, out, err).run() == 0
    notes = err.getvalue()
    assert notes.count("bytes that are not UTF-8; they were replaced by �") == 2
    assert "Traceback" not in notes and "temperature = 0.5" in out.getvalue()
    assert engine.prompts[0].endswith("caf\ufffd au lait\n\nAssistant:")
    saved = session.store.thread(session.conversation_id)
    assert [m.content for m in saved] == ["caf\ufffd au lait", "Noted.", "\ufffd\ufffd", "Noted."]


def test_chat_command_with_non_utf8_system_prompt(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(["Fine."])
    monkeypatch.setattr(
        chat_engine, "load_engine", lambda spec, precision: FakeLoader(engine)(spec)
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert main(["chat", "--plain", "--system", "be \udcff brief", "--stop", "\udce9"]) == 0
    assert capsys.readouterr().out == "Fine.\n"
    assert "be \ufffd brief" in engine.prompts[0]
    (record,) = ConversationStore().list_conversations()
    assert record.system == "be \ufffd brief" and record.options["stop"] == ["\ufffd"]

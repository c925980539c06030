"""`scribe chat --plain`: a line-mode chat for pipes, scripts and simple terminals.

Used automatically when stdin or stdout is not a terminal. With a terminal it is a prompt-toolkit
prompt with persistent history: Enter sends, Ctrl+J (or Esc then Enter) inserts a newline, and a
paste keeps its newlines. From a pipe it reads lines; a block between two lines of three quotes
(\"\"\") is one multi-line message. Replies stream to stdout; notes go to stderr. Ctrl+C stops the
reply, not the program; end of input ends the session with exit status 0. Input bytes that are not
UTF-8 are replaced by U+FFFD, with one note saying so.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from scribe.engine import paths
from scribe.engine.chat.conversations import clean_text
from scribe.engine.chat.session import ChatSession, Reply
from scribe.engine.errors import ScribeError
from scribe.tui.chat import commands as ui
from scribe.tui.chat.reply_stats import describe_reply
from scribe.tui.chat.slash_commands import is_command, model_failed, run_command, unescape

BLOCK = '"""'
KEYS = "Keys: Enter sends, Ctrl+J or Esc Enter adds a line, Ctrl+C stops a reply, Ctrl+D quits."
HISTORY_FILE = "chat_history.txt"


class PlainChat:
    def __init__(
        self,
        session: ChatSession,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.session = session
        self.stdin = _tolerant(stdin or sys.stdin)
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.interactive = self.stdin.isatty() and self.out.isatty()
        self.cancel = threading.Event()  # set by Ctrl+C to stop the reply being written

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> int:
        self.load_model(self.session.settings.model)
        if self.session.warning:
            self.note(f"scribe: warning: {self.session.warning}")
        if self.interactive:
            self.note(f"scribe chat · {self.session.model_name} · /help for commands · {KEYS}")
            for message in self.session.thread:
                who = "you" if message.role == "user" else "assistant"
                self.note(f"{who}> {message.content}")
        for text in self.messages():
            if not self.handle(text):
                break
        if not self.session.flush() and self.session.save_error:
            self.note(f"scribe: error: {self.session.save_error}")
            return 1
        return 0

    def messages(self) -> Iterator[str]:
        return self._prompt_lines() if self.interactive else self._piped_lines()

    def handle(self, text: str) -> bool:
        """One message or command; False ends the session."""
        cleaned = clean_text(text)
        if cleaned != text:
            self.note("scribe: that input had bytes that are not UTF-8; they were replaced by �")
            text = cleaned
        if not text.strip():
            return True
        try:
            if is_command(text.strip()):
                return self.command(text.strip())
            self.reply(lambda: self.session.send(unescape(text)))
        except ScribeError as err:
            self.note(f"scribe: {err}")
        return True

    def command(self, line: str) -> bool:
        return ui.dispatch(run_command(self.session, line, KEYS), self)

    # -- what a command asks for (ui.CommandHandler); False ends the session -----------------
    def show_note(self, command: ui.UiCommand) -> bool:
        print(command.note, file=self.out, flush=True)
        return True

    # Nothing more to do for these than print what they say.
    new_conversation = show_history = show_note

    def switch_model(self, command: ui.SwitchModel) -> bool:
        self.show_note(command)
        self.load_model_in_chat(command.spec)
        return True

    def open_conversation(self, command: ui.OpenConversation) -> bool:
        self.show_note(command)
        if command.reload:
            self.load_model_in_chat(command.model)
        return True

    def send_text(self, command: ui.SendText) -> bool:
        self.note(command.note)  # on stderr: stdout is for replies
        self.reply(lambda: self.session.send(command.text))
        return True

    def quit(self, command: ui.Quit) -> bool:
        return False

    def load_model(self, spec: str | None) -> None:
        self.note(f"loading model {spec or '(default)'}…")
        self.session.load_model(spec)
        self.note(f"model {self.session.model_name} ready")

    def load_model_in_chat(self, spec: str | None) -> None:
        """/model, or a reopened conversation's model: a failure is one note worded for the
        chat, and the model loaded before goes on answering."""
        try:
            self.load_model(spec)
        except ScribeError as err:
            self.note(f"scribe: {model_failed(self.session, spec, str(err))}")

    # -- a reply --------------------------------------------------------------------------
    def reply(self, start: Callable[[], Reply]) -> None:
        """Stream a reply from a worker thread; Ctrl+C (KeyboardInterrupt) here stops it."""
        reply = start()
        self.cancel = cancel = threading.Event()
        deltas: queue.Queue[tuple[str, object]] = queue.Queue()

        def work() -> None:
            try:
                for delta in reply.stream(cancel):
                    deltas.put(("delta", delta))
                deltas.put(("done", None))
            except Exception as err:  # reported below, in the main thread
                deltas.put(("error", err))

        worker = threading.Thread(target=work, name="scribe-reply", daemon=True)
        try:
            worker.start()
        except KeyboardInterrupt:  # Ctrl+C before the first token
            cancel.set()
        while True:
            try:
                try:
                    # Wake up now and then: a Ctrl+C that lands on another thread is seen here.
                    kind, value = deltas.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind != "delta":
                    break
                self.out.write(str(value))
                self.out.flush()
            except KeyboardInterrupt:
                cancel.set()  # the worker stops after this token; what it wrote is kept
        while worker.is_alive():
            try:
                worker.join()
            except KeyboardInterrupt:
                cancel.set()
        self.out.write("\n")
        self.out.flush()
        if kind == "error":
            self.note(f"scribe: error: the model failed mid-reply ({value}); what it wrote is kept")
        elif summary := describe_reply(reply):
            self.note(f"[{summary}]")  # ", stopped]" when Ctrl+C stopped it
        if self.session.save_error:
            self.note(
                f"scribe: not saved yet ({self.session.unsaved} messages, will retry): "
                f"{self.session.save_error}"
            )

    # -- input ----------------------------------------------------------------------------
    def _piped_lines(self) -> Iterator[str]:
        block: list[str] | None = None
        for raw in self.stdin:
            line = raw.rstrip("\n").rstrip("\r")
            if block is not None:
                if line.strip() == BLOCK:
                    yield "\n".join(block)
                    block = None
                else:
                    block.append(line)
            elif line.strip() == BLOCK:
                block = []
            else:
                yield line
        if block:
            yield "\n".join(block)

    def _prompt_lines(self) -> Iterator[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings

        bindings = KeyBindings()

        @bindings.add("enter")
        def _send(event) -> None:  # type: ignore[no-untyped-def]
            event.current_buffer.validate_and_handle()

        @bindings.add("c-j")
        @bindings.add("escape", "enter")
        def _newline(event) -> None:  # type: ignore[no-untyped-def]
            event.current_buffer.insert_text("\n")

        history_path = paths.data_dir() / HISTORY_FILE
        try:
            paths.make_private_dir(history_path.parent)  # what you typed is as private as chats
            with paths.private_umask():
                history_path.touch()
            paths.tighten(history_path)
            history: FileHistory | InMemoryHistory = FileHistory(str(history_path))
        except OSError:
            history = InMemoryHistory()
        prompt = PromptSession(history=history, multiline=True, key_bindings=bindings)
        while True:
            try:
                yield prompt.prompt("> ", prompt_continuation="… ")
            except KeyboardInterrupt:
                continue  # Ctrl+C at the prompt clears the line, as in a shell
            except EOFError:
                return


def _tolerant(stream: TextIO) -> TextIO:
    """Read undecodable bytes as lone surrogates (`handle` replaces them and says so) instead of
    raising UnicodeDecodeError mid-session. A stream that cannot be reconfigured is left as is."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="surrogateescape")
        except (ValueError, OSError):
            pass
    return stream


def run_plain(session: ChatSession) -> int:
    chat = PlainChat(session)
    code = chat.run()
    if chat.interactive:
        # After a prompt-toolkit session, libtorch's C++ static destructors can spin forever at
        # process exit (seen with torch 2.13; gdb shows exit handlers in libtorch_cpu). Every
        # message is already committed, so close the store, flush, and leave without them.
        if session.store is not None:
            session.store.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code

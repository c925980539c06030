"""The Textual app of `scribe chat`: its stylesheet, the chat screen it starts on (which has the
keys), the notices it shows, and the thread workers that load the model and stream replies, so
typing never waits for the model."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.notifications import SeverityLevel
from textual.screen import Screen

from scribe.engine.chat.session import ChatSession, Reply
from scribe.engine.errors import ScribeError
from scribe.tui.chat.palette import chat_commands
from scribe.tui.chat.screens.chat import ChatScreen


class ChatApp(App[int]):
    TITLE = "scribe chat"
    DEFAULT_MODE = "chat"
    # Absolute: Textual resolves a relative CSS_PATH next to the module of the running class,
    # which for a subclass (the snapshot tests have one) lies elsewhere.
    CSS_PATH = Path(__file__).with_name("chat.tcss")

    def __init__(self, session: ChatSession) -> None:
        super().__init__()
        self.session = session
        self.chat = ChatScreen(session)
        self.notices: list[str] = []  # every notice shown, oldest first
        # The chat as a mode's base screen: Textual mounts that one (unlike a default screen)
        # before the app, so the thread is shown and the prompt focused before the first key.
        self.add_mode(self.DEFAULT_MODE, lambda: self.chat)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notices carry user text (a command, a title, a path), so they are not markup by
        default: [brackets] would vanish, and a stray [/x] would raise."""
        self.notices.append(message)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help_quit(self) -> None:
        """Ctrl+C outside the prompt (Textual's own notice is markup)."""
        self.notify("Press Ctrl+Q to quit", title="Do you want to quit?")

    async def action_quit(self) -> None:
        """Ctrl+Q and /quit: a reply being written stops, and is saved as stopped."""
        await self.chat.stop_reply()
        self.session.flush()
        self.exit(0)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from chat_commands(self.chat)  # over a picker too: they act on the chat

    # -- the threads: results come back through call_from_thread, which waits for them ---
    @work(thread=True, exclusive=True, group="model")
    def load_model(self, spec: str | None, done: Callable[[str | None], Awaitable[None]]) -> None:
        """Load `spec` into the session; `done` gets None, or the error to show."""
        try:
            self.session.load_model(spec)
        except ScribeError as err:
            error: str | None = str(err)
        except Exception as err:  # a broken model folder must not take the app down
            error = f"cannot load the model: {err}"
        else:
            error = None
        self.call_from_thread(done, error)

    @work(thread=True, exclusive=True, group="reply")
    def stream_reply(
        self,
        reply: Reply,
        cancel: threading.Event,
        write: Callable[[str], Awaitable[None]],
        done: Callable[[Exception | None], Awaitable[None]],
    ) -> None:
        """Stream `reply` until it ends or `cancel` is set: each piece to `write`, then `done`
        with the error that cut it short, if any."""
        error: Exception | None = None
        try:
            for delta in reply.stream(cancel):
                self.call_from_thread(write, delta)
        except Exception as err:  # shown to the user; what was written is kept
            error = err
        try:
            self.call_from_thread(done, error)
        except RuntimeError:
            pass  # the app is closing

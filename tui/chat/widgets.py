"""The widgets of `scribe chat`: the prompt box, a message, notes and the window divider."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message as TextualMessage
from textual.widgets import Label, Markdown, Static, TextArea
from textual.widgets.markdown import MarkdownStream

from scribe.engine.chat.messages import Message

NEWLINE_KEYS = {"ctrl+j", "newline", "shift+enter"}


class PromptArea(TextArea):
    """Multi-line prompt: Enter sends, Ctrl+J (or Shift+Enter where the terminal reports it)
    inserts a newline; a paste keeps its newlines."""

    class Submitted(TextualMessage):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text))
            return
        if event.key in NEWLINE_KEYS or NEWLINE_KEYS & set(event.aliases):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)

    def restore(self, text: str) -> None:
        """`text` back in the prompt, focused, the cursor at its end to go on typing."""
        self.text = text
        self.focus()
        self.move_cursor(self.document.end)


class MessageView(Vertical, can_focus=True):
    """One turn: a role line and the text as Markdown. Dimmed (class -outside) when it lies
    outside the model's context window.

    A selected (focused) turn has no letter keys: typing goes on in the prompt (`Typed`), so a
    word typed after Tab never runs hidden commands. Its keys: ←/→ switch branches, Enter edits
    your turn or copies a reply."""

    BINDINGS = [
        Binding("left", "branch(-1)", "Prev branch"),
        Binding("right", "branch(1)", "Next branch"),
        Binding("enter", "edit_this", "Edit"),  # on your turns
        Binding("enter", "copy_this", "Copy"),  # on replies
    ]

    class BranchRequested(TextualMessage):
        def __init__(self, view: MessageView, step: int) -> None:
            self.view, self.step = view, step
            super().__init__()

    class Typed(TextualMessage):
        """A character typed while this turn was selected; the chat screen puts it in the prompt."""

        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    def __init__(self, message: Message, branch: tuple[int, int] = (1, 1)) -> None:
        super().__init__(classes=f"message -{message.role}")
        self.message = message
        self.branch = branch
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.header(), classes="role")
        yield Markdown(self.message.content or "", classes="body")

    def header(self) -> str:
        who = "You" if self.message.role == "user" else "Assistant"
        parts = [who]
        if self.message.status == "streaming":
            parts.append("writing… (Esc stops)")
        elif self.message.status == "stopped":
            parts.append("■ stopped")
        elif self.message.status == "error":
            parts.append("✗ failed")
        elif self.message.role == "assistant" and not self.message.content:
            parts.append("(empty reply)")
        if self.branch[1] > 1:
            parts.append(f"‹{self.branch[0]}/{self.branch[1]}›")
        if self.has_class("-outside"):
            parts.append("outside the context window")
        return " · ".join(parts)

    def refresh_header(self) -> None:
        if self.is_mounted:
            self.query_one(".role", Label).update(self.header())

    def set_outside(self, outside: bool) -> None:
        self.set_class(outside, "-outside")
        self.refresh_header()

    async def write(self, delta: str) -> None:
        """Append streamed text."""
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        await self._stream.write(delta)

    async def finish(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.query_one(Markdown).update(self.message.content or "")
        self.refresh_header()

    def on_key(self, event: events.Key) -> None:
        if event.is_printable and event.character:
            event.stop()
            event.prevent_default()
            self.post_message(self.Typed(event.character))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit_this":
            return self.message.role == "user"
        if action == "copy_this":
            return self.message.role != "user"
        return True

    def action_branch(self, step: int) -> None:
        self.post_message(self.BranchRequested(self, step))

    async def action_edit_this(self) -> None:
        await self.screen.run_action("edit")  # the screen's edit acts on the focused turn

    def action_copy_this(self) -> None:
        self.app.copy_to_clipboard(self.message.content)
        self.app.notify(f"copied ({len(self.message.content)} characters)")


class Note(Static):
    """Output of a slash command: shown in the conversation, never saved or sent."""

    def __init__(self, text: str) -> None:
        super().__init__(text, classes="note", markup=False)


class WindowDivider(Static):
    """Marks where the context window starts; the turns above it are dimmed."""

    def __init__(self, outside: int) -> None:
        what = "1 earlier turn above is" if outside == 1 else f"{outside} earlier turns above are"
        text = f"╌╌ {what} outside the context window (dimmed) ╌╌"
        super().__init__(text, classes="divider")

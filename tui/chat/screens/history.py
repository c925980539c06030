"""The history picker: saved conversations, newest first; typing searches them (FTS5)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from scribe.engine.chat.conversations import ConversationRecord, SearchHit
from scribe.engine.chat.markdown import when
from scribe.engine.chat.session import ChatSession

MATCH_STYLE = "bold reverse"  # a search match


class HistoryScreen(ModalScreen[int | None]):
    """Enter opens the highlighted conversation (the result is its id); Esc closes (None)."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]

    def __init__(self, session: ChatSession, query: str = "") -> None:
        super().__init__()
        self.session = session
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(id="history"):
            yield Label(
                "Conversations — type to search, Enter opens, Esc closes", id="history-title"
            )
            yield Input(value=self.query_text, placeholder="search saved conversations…")
            yield OptionList(id="history-list")

    def on_mount(self) -> None:
        self.fill(self.query_text)
        self.query_one(Input).focus()

    def fill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        if self.session.store is None:
            return
        # Rich Text, never markup: a title or snippet with [brackets] is shown as it is.
        if query.strip():
            for hit in self.session.store.search(query):
                options.add_option(Option(hit_text(hit), id=str(hit.conversation_id)))
        else:
            for record in self.session.list_conversations(100):
                options.add_option(Option(record_text(record), id=str(record.id)))
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None and options.option_count:
            option = options.get_option_at_index(options.highlighted)
            self.dismiss(int(option.id or 0))

    def on_key(self, event: events.Key) -> None:
        if event.key in ("down", "up") and isinstance(self.focused, Input):
            options = self.query_one(OptionList)
            if event.key == "down":
                options.action_cursor_down()
            else:
                options.action_cursor_up()
            event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def hit_text(hit: SearchHit) -> Text:
    """A search hit: its conversation's line, then the snippet with the matches highlighted."""
    text = Text(f"{hit.conversation_id:>4}  {when(hit.updated)}  {hit.title}\n      ")
    offset = len(text)
    text.append(hit.snippet)
    for start, end in hit.marks:
        text.stylize(MATCH_STYLE, offset + start, offset + end)
    return text


def record_text(record: ConversationRecord) -> Text:
    return Text(
        f"{record.id:>4}  {when(record.updated)}  {record.message_count:>3} msgs  {record.title}"
    )

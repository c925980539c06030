"""The chat screen of `scribe chat`: the conversation, the prompt and the status line.

All chat logic lives in `ChatSession`; this screen shows it and owns what the UI adds: the reply
being written, the turn being edited, messages typed while the model loads. Esc stops a reply
(the partial text is kept and marked stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker

from scribe.engine.chat.conversations import clean_text
from scribe.engine.chat.messages import Message
from scribe.engine.chat.session import ChatSession, Reply
from scribe.engine.errors import ScribeError
from scribe.tui.chat import commands as ui
from scribe.tui.chat import slash_commands as slash
from scribe.tui.chat.code_blocks import code_blocks
from scribe.tui.chat.conversation import Conversation
from scribe.tui.chat.keys import CHAT_BINDINGS, KEYS_HELP
from scribe.tui.chat.reply_stats import describe_reply
from scribe.tui.chat.screens.history import HistoryScreen
from scribe.tui.chat.slash_commands import is_command, run_command, unescape
from scribe.tui.chat.status import REPLYING, StatusBar
from scribe.tui.chat.widgets import MessageView, PromptArea

if TYPE_CHECKING:
    from scribe.tui.chat.app import ChatApp

BUSY_COMMANDS = {"new", "history", "model", "read"}
NO_METER = "–/– (–)"


class ChatScreen(Screen[None]):
    """The screen the app starts on, and the UI side of the slash commands (ui.CommandHandler)."""

    BINDINGS = CHAT_BINDINGS

    def __init__(self, session: ChatSession) -> None:
        super().__init__()
        self.session = session
        # The model spec being loaded ("": the default). Not `loading`: on a widget that shows
        # Textual's loading indicator.
        self.model_loading: str | None = None
        self.load_error: str | None = None
        self.asked_in_chat = False  # the model being loaded was asked for by /model
        self.reply: Reply | None = None
        self.cancel = threading.Event()
        self.editing: Message | None = None
        self.queued: list[str] = []  # typed while the model loads
        self.meter = NO_METER
        self.reply_worker: Worker[None] | None = None
        self.reply_summary: str | None = None  # the last reply's speed and ending

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        yield Conversation(id="conversation")
        yield PromptArea(id="prompt", soft_wrap=True, show_line_numbers=False)
        yield StatusBar(id="statusbar")
        yield Footer()

    async def on_mount(self) -> None:
        self.sub_title = self.session.title or "new conversation"
        await self.render_thread()
        self.prompt.focus()
        if self.session.warning:
            self.notify(self.session.warning, severity="warning", timeout=15)
        self.start_loading(self.session.settings.model)

    def notify(self, message: str, **options: Any) -> None:  # type: ignore[override]
        """Through the app's notify, whose notices are not markup (Widget.notify's are)."""
        self.app.notify(message, **options)

    @property
    def host(self) -> ChatApp:  # the app runs the threads
        return cast("ChatApp", self.app)

    @property
    def conversation(self) -> Conversation:
        return self.query_one("#conversation", Conversation)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one(PromptArea)

    @property
    def generating(self) -> bool:
        return self.reply is not None

    def message_views(self) -> list[MessageView]:
        return self.conversation.views()

    async def render_thread(self) -> None:
        """Show the session's thread from scratch (after open, new, edit, branch switch)."""
        await self.conversation.show_thread(self.session)
        self.sub_title = self.session.title or "new conversation"
        await self.update_window()
        # Anchored, the view stays at the newest turn while the Markdown of each turn lays out
        # (a single scroll_end now would land above it); scrolling up releases the anchor.
        self.conversation.anchor()
        if self.focused in (None, self.conversation):  # the selected turn was removed
            self.prompt.focus()

    async def update_window(self, window_owner: Reply | None = None) -> None:
        """Dim the turns outside the context window and refresh the token meter."""
        try:
            window = window_owner.window if window_owner else self.session.window()
        except ScribeError as err:
            self.notify(str(err), severity="warning")
            window = None
        await self.conversation.mark_window(window, window_owner)
        self.meter = window.meter() if window is not None else NO_METER
        self.update_status()

    def update_status(self) -> None:
        activity = self.reply_summary  # when there is nothing else to say
        if self.generating:
            activity = REPLYING
        elif self.editing is not None:
            activity = "editing a turn · Enter forks · Esc cancels"
        self.query_one(StatusBar).show(
            self.session, self.model_loading, bool(self.load_error), activity, self.meter
        )

    # -- the model ------------------------------------------------------------------------
    def start_loading(self, spec: str | None, asked_in_chat: bool = False) -> None:
        """Load `spec` in the background; `asked_in_chat`: not by --model (errors say /model)."""
        self.model_loading = spec or ""
        self.asked_in_chat = asked_in_chat
        self.load_error = None
        self.update_status()
        self.host.load_model(spec, self.model_loaded)

    async def model_loaded(self, error: str | None) -> None:
        spec, self.model_loading = self.model_loading, None
        if error is not None:
            if self.asked_in_chat:
                error = slash.model_failed(self.session, spec, error)
            self.load_error = error
            self.notify(error, title="model", severity="error", timeout=10)
            self.update_status()
            return
        await self.update_window()
        queued, self.queued = self.queued, []
        if queued:
            await self.submit("\n\n".join(queued))

    # -- sending --------------------------------------------------------------------------
    async def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        await self.submit(event.text)

    async def submit(self, text: str) -> None:
        """What Enter sends: a slash command, or a message."""
        text = clean_text(text)  # a paste with undecodable bytes: U+FFFD, not a crash later
        stripped = text.strip()
        if not stripped:
            return
        if is_command(stripped):
            self.prompt.clear()
            await self.command(stripped, restore=text)
            return
        await self.send(unescape(text))

    async def send(self, text: str) -> None:
        if self.generating:
            self.notify("a reply is still being written; Esc stops it", severity="warning")
            return
        if self.session.engine is None:
            if self.model_loading is None:
                self.notify(self.load_error or "no model loaded; use /model NAME", severity="error")
                return
            self.queued.append(text)
            self.prompt.clear()
            self.notify("the model is still loading; your message is sent when it is ready")
            return
        self.prompt.clear()
        if self.editing is not None:
            target, self.editing = self.editing, None
            await self.start_reply(lambda: self.session.edit(target, text), rerender=True)
        else:
            await self.start_reply(lambda: self.session.send(text), rerender=False, restore=text)

    async def start_reply(
        self, start: Callable[[], Reply], rerender: bool, restore: str = ""
    ) -> None:
        try:
            reply = start()
        except ScribeError as err:
            self.notify(str(err), severity="error")
            if restore:
                self.prompt.restore(restore)
            return
        self.reply = reply
        self.cancel = threading.Event()
        if rerender:
            await self.render_thread()
        else:
            await self.conversation.mount(MessageView(reply.user))
        view = MessageView(reply.message)
        await self.conversation.mount(view)
        self.conversation.anchor()
        await self.update_window(reply)
        if reply.window.cut_current:
            self.notify(
                "your message was longer than the context window; its middle (or start) "
                "was left out of the prompt",
                severity="warning",
            )
        finished = partial(self.reply_finished, reply, view)
        self.reply_worker = self.host.stream_reply(reply, self.cancel, view.write, finished)

    async def reply_finished(
        self, reply: Reply, view: MessageView, error: Exception | None
    ) -> None:
        self.reply = None
        self.reply_worker = None
        self.reply_summary = describe_reply(reply)
        self.sub_title = self.session.title or "new conversation"
        await view.finish()
        view.branch = self.session.branch_info(reply.message)
        view.refresh_header()
        if error is not None:
            self.notify(f"the model failed mid-reply: {error}", severity="error", timeout=10)
        if self.session.save_error:
            self.notify(
                f"not saved yet, will retry: {self.session.save_error}",
                severity="warning",
                timeout=10,
            )
        await self.update_window()

    async def stop_reply(self) -> None:
        """Stop the reply being written, and wait until its worker is done."""
        if self.generating and self.reply_worker is not None:
            self.cancel.set()
            await self.reply_worker.wait()

    # -- commands: typed, or a slash command line; one method per UI command (ui.CommandHandler)
    async def command(self, line: str, restore: str = "") -> None:
        """Run a slash command line; if it cannot run, `restore` goes back into the prompt."""
        name = line[1:].split(" ", 1)[0].lower()
        busy = name if name in BUSY_COMMANDS else None
        if not await self.perform(lambda: run_command(self.session, line, KEYS_HELP), busy):
            self.prompt.restore(restore)

    async def perform(self, make: Callable[[], ui.UiCommand], busy: str | None = None) -> bool:
        """Dispatch the UI command `make` returns (having done its part on the session); False,
        with a notice, if it fails or is the `busy` command named while a reply is written."""
        if busy is not None and self.generating:
            self.notify(f"/{busy} waits until the reply is done; Esc stops it", severity="warning")
            return False
        try:
            command = make()
        except ScribeError as err:
            self.notify(str(err), severity="error", timeout=8)
            return False
        await ui.dispatch(command, self)
        return True

    async def show_note(self, command: ui.ShowNote) -> None:
        await self.conversation.add_note(command.note)
        await self.update_window()

    async def switch_model(self, command: ui.SwitchModel) -> None:
        await self.conversation.add_note(command.note)
        self.start_loading(command.spec, asked_in_chat=True)

    async def new_conversation(self, command: ui.NewConversation) -> None:
        await self.show_new_thread()

    async def open_conversation(self, command: ui.OpenConversation) -> None:
        await self.show_new_thread()
        if command.reload:
            self.start_loading(command.model, asked_in_chat=True)

    async def show_new_thread(self) -> None:
        """No note: the new thread replaces all the conversation showed."""
        self.editing = None
        self.reply_summary = None
        await self.render_thread()
        self.prompt.focus()  # typing goes on in the prompt, whatever turn was selected

    async def show_history(self, command: ui.ShowHistory) -> None:
        self.open_history(command.query)

    async def send_text(self, command: ui.SendText) -> None:
        self.notify(command.note)
        text = clean_text(command.text)
        if text.strip():
            await self.send(text)

    async def quit(self, command: ui.Quit) -> None:
        await self.app.action_quit()

    def open_history(self, query: str = "") -> None:
        async def opened(conversation_id: int | None) -> None:
            if not conversation_id:
                return
            if self.generating:  # picked (Ctrl+O) while a reply was written: it ends here
                await self.stop_reply()
                self.notify("the reply was stopped to open the conversation; it is kept")
            await self.perform(
                partial(slash.open_conversation, self.session, conversation_id), "history"
            )

        self.app.push_screen(HistoryScreen(self.session, query), opened)

    # -- actions (keys.py binds them) -----------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating or self.editing is not None  # hidden when idle: footer room
        if action in ("regenerate", "edit", "new"):
            return None if self.generating else True
        return True

    def action_stop(self) -> None:
        if self.generating:
            self.cancel.set()
        elif self.editing is not None:
            self.editing = None
            self.prompt.clear()
            self.update_status()

    async def action_regenerate(self) -> None:
        if self.generating:
            return
        if self.session.engine is None:
            self.notify("the model is not loaded yet", severity="warning")
            return
        await self.start_reply(self.session.regenerate, rerender=True)

    def action_edit(self) -> None:
        """Edit the selected turn of yours, or else your last one."""
        if self.generating:
            return
        focused = self.focused
        target = None
        if isinstance(focused, MessageView) and focused.message.role == "user":
            target = focused.message
        target = target or self.session.last_user_message()
        if target is None:
            self.notify("no turn of yours to edit yet", severity="warning")
            return
        self.editing = target
        self.prompt.restore(target.content)
        self.update_status()

    def action_copy_reply(self) -> None:
        focused = self.focused
        message = focused.message if isinstance(focused, MessageView) else self.session.last_reply()
        if message is None or not message.content:
            self.notify("no reply to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(message.content)
        self.notify(f"copied the reply ({len(message.content)} characters)")

    def action_copy_code(self) -> None:
        reply = self.session.last_reply()
        blocks = code_blocks(reply.content) if reply else []
        if not blocks:
            self.notify("no code block in the last reply", severity="warning")
            return
        self.app.copy_to_clipboard(blocks[-1])
        self.notify(f"copied the code block ({len(blocks[-1])} characters)")

    # Ctrl+O: the picker, also while a reply is written (picking a conversation stops it).
    action_history = open_history

    async def action_new(self) -> None:
        if not self.generating:
            await self.perform(partial(slash.new_conversation, self.session))

    def on_message_view_typed(self, event: MessageView.Typed) -> None:
        """A character typed on a selected turn: carry on typing in the prompt."""
        self.prompt.focus()
        self.prompt.insert(event.text)

    async def on_message_view_branch_requested(self, event: MessageView.BranchRequested) -> None:
        if self.generating:
            return
        message = event.view.message
        if self.session.switch_branch(message, event.step):
            await self.render_thread()
            for view in self.message_views():  # the turn now shown in its place keeps the focus
                if view.message.parent is message.parent and view.message.role == message.role:
                    view.focus()
                    break

"""The Textual app of `scribe chat`.

All chat logic lives in `ChatSession`; this module turns it into a screen. The model loads and
replies stream in thread workers, so typing never waits for the model. Esc stops a reply (the
partial text is kept and marked stopped); turns outside the model's context window are dimmed
under a divider, and the status line carries the token meter `used/limit (reserve)`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker

from scribe.engine.chat.conversations import clean_text
from scribe.engine.chat.session import ChatSession, Message, Reply, message_key
from scribe.engine.errors import ScribeError
from scribe.tui.chat.slash_commands import describe_options, is_command, run_command, unescape
from scribe.tui.chat.style import CHAT_CSS
from scribe.tui.chat.widgets import (
    HistoryScreen,
    MessageView,
    Note,
    PromptArea,
    WindowDivider,
)

KEYS_HELP = (
    "Keys: Enter sends · Ctrl+J new line · Esc stops a reply · Ctrl+R regenerate · "
    "F2 edit your last turn · F3 copy the last reply · F4 copy code block · "
    "Tab/Shift+Tab select a turn: Enter (or F2/F3) edits or copies it, ←/→ switch branches, "
    "typing goes on in the prompt · Ctrl+O history · Ctrl+N new · "
    "Ctrl+P commands and themes · Ctrl+Q quit"
)
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
BUSY_COMMANDS = {"new", "history", "model", "read"}


class ChatApp(App[int]):
    TITLE = "scribe chat"
    CSS = CHAT_CSS
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("f2", "edit", "Edit"),
        Binding("f3", "copy_reply", "Copy"),
        Binding("f4", "copy_code", "Copy code"),
        Binding("ctrl+o", "history", "History"),
        Binding("ctrl+n", "new", "New"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, session: ChatSession) -> None:
        super().__init__()
        self.session = session
        self.loading: str | None = None  # the model spec being loaded
        self.load_error: str | None = None
        self.reply: Reply | None = None
        self.cancel = threading.Event()
        self.editing: Message | None = None
        self.queued: list[str] = []
        self.meter = "–/– (–)"
        self._reply_worker: Worker[None] | None = None

    # -- layout ---------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(icon="✎")
        yield VerticalScroll(id="conversation")
        yield PromptArea(id="prompt", soft_wrap=True, show_line_numbers=False)
        with Horizontal(id="statusbar"):
            yield Static("", id="status", markup=False)
            yield Static("", id="meter", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        self.sub_title = self.session.title or "new conversation"
        await self.render_thread()
        self.query_one(PromptArea).focus()
        self.warn_if_damaged()
        self.start_loading(self.session.settings.model)

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
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help_quit(self) -> None:
        """Ctrl+C outside the prompt (Textual's own notice is markup)."""
        self.notify("Press Ctrl+Q to quit", title="Do you want to quit?")

    def warn_if_damaged(self) -> None:
        if self.session.warning:
            self.notify(self.session.warning, severity="warning", timeout=15)

    @property
    def conversation(self) -> VerticalScroll:
        return self.query_one("#conversation", VerticalScroll)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one(PromptArea)

    @property
    def generating(self) -> bool:
        return self.reply is not None

    async def render_thread(self) -> None:
        """Show the session's thread from scratch (after open, new, edit, branch switch)."""
        await self.conversation.remove_children()
        views = [MessageView(m, self.session.branch_info(m)) for m in self.session.thread]
        if views:
            await self.conversation.mount_all(views)
        self.sub_title = self.session.title or "new conversation"
        await self.update_window()
        # Anchored, the view stays at the newest turn while the Markdown of each turn lays out
        # (a single scroll_end now would land above it); scrolling up releases the anchor.
        self.conversation.anchor()
        if self.focused in (None, self.conversation):  # the selected turn was removed
            self.prompt.focus()

    def message_views(self) -> list[MessageView]:
        return list(self.conversation.query(MessageView))

    async def update_window(self, window_owner: Reply | None = None) -> None:
        """Dim the turns outside the context window and refresh the token meter."""
        try:
            window = window_owner.window if window_owner else self.session.window()
        except ScribeError as err:
            self.notify(str(err), severity="warning")
            window = None
        views = self.message_views()
        for divider in self.conversation.query(WindowDivider):
            await divider.remove()
        if window is None:
            self.meter = "–/– (–)"
        else:
            self.meter = window.meter()
            limit = views.index(self._view_of(window_owner.user)) if window_owner else len(views)
            outside = [v for v in views[:limit] if message_key(v.message) not in window.in_window]
            for view in views:
                view.set_outside(view in outside)
            if outside:
                first_inside = next((v for v in views if v not in outside), None)
                exchanges_out = sum(1 for v in outside if v.message.role == "user")
                divider = WindowDivider(exchanges_out or len(outside))
                if first_inside is not None:
                    await self.conversation.mount(divider, before=first_inside)
                else:
                    await self.conversation.mount(divider)
        self.update_status()

    def _view_of(self, message: Message) -> MessageView:
        return next(v for v in self.message_views() if v.message is message)

    def update_status(self) -> None:
        """Model, template, options and state on the left; the token meter on the right."""
        template = self.session.template.name if self.session.template else "chat"
        if self.loading is not None:
            model = f"loading model {self.loading or '(default)'}…"
        elif self.load_error:
            model = "no model (/model NAME)"
        else:
            model = self.session.model_name
        parts = [model, f"template {template}"]
        if self.generating:
            parts.append("replying · Esc stops")
        elif self.editing is not None:
            parts.append("editing a turn · Enter forks · Esc cancels")
        if self.session.engine is not None:
            parts.append(describe_options(self.session))
        if self.session.save_error:
            parts.append(f"⚠ {self.session.unsaved} unsaved")
        self.query_one("#status", Static).update(" │ ".join(parts))
        self.query_one("#meter", Static).update(f"tokens {self.meter}")
        busy = self.generating or self.loading is not None
        self.query_one("#statusbar").set_class(busy, "-busy")

    # -- the model ------------------------------------------------------------------------
    def start_loading(self, spec: str | None) -> None:
        self.loading = spec or ""
        self.load_error = None
        self.update_status()
        self._load_model(spec)

    @work(thread=True, exclusive=True, group="model")
    def _load_model(self, spec: str | None) -> None:
        try:
            self.session.load_model(spec)
        except ScribeError as err:
            self.call_from_thread(self._model_failed, str(err))
        except Exception as err:  # a broken model folder must not take the app down
            self.call_from_thread(self._model_failed, f"cannot load the model: {err}")
        else:
            self.call_from_thread(self._model_ready)

    async def _model_ready(self) -> None:
        self.loading = None
        await self.update_window()
        queued, self.queued = self.queued, []
        if queued:
            await self.submit("\n\n".join(queued))

    def _model_failed(self, message: str) -> None:
        self.loading = None
        self.load_error = message
        self.notify(message, title="model", severity="error", timeout=10)
        self.update_status()

    # -- sending --------------------------------------------------------------------------
    async def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        await self.submit(event.text)

    async def submit(self, text: str) -> None:
        text = clean_text(text)  # a paste with undecodable bytes: U+FFFD, not a crash later
        stripped = text.strip()
        if not stripped:
            return
        if is_command(stripped):
            self.prompt.clear()
            await self.command(stripped, restore=text)
            return
        text = unescape(text)
        if self.generating:
            self.notify("a reply is still being written; Esc stops it", severity="warning")
            return
        if self.session.engine is None:
            if self.loading is None:
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

    async def start_reply(self, start, rerender: bool, restore: str = "") -> None:  # type: ignore[no-untyped-def]
        try:
            reply = start()
        except ScribeError as err:
            self.notify(str(err), severity="error")
            if restore:
                self.prompt.text = restore
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
        self._reply_worker = self._stream_reply(reply, view)

    @work(thread=True, exclusive=True, group="reply")
    def _stream_reply(self, reply: Reply, view: MessageView) -> None:
        error: Exception | None = None
        try:
            for delta in reply.stream(self.cancel):
                self.call_from_thread(view.write, delta)
        except Exception as err:  # shown to the user; what was written is kept
            error = err
        try:
            self.call_from_thread(self._reply_finished, reply, view, error)
        except RuntimeError:
            pass  # the app is closing

    async def _reply_finished(
        self, reply: Reply, view: MessageView, error: Exception | None
    ) -> None:
        self.reply = None
        self._reply_worker = None
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

    # -- slash commands -------------------------------------------------------------------
    async def command(self, line: str, restore: str) -> None:
        name = line[1:].split(" ", 1)[0].lower()
        if self.generating and name in BUSY_COMMANDS:
            self.notify(f"/{name} waits until the reply is done; Esc stops it", severity="warning")
            self.prompt.text = restore
            return
        try:
            result = run_command(self.session, line, KEYS_HELP)
        except ScribeError as err:
            self.notify(str(err), severity="error", timeout=8)
            self.prompt.text = restore
            return
        action = result.action
        if action == "quit":
            await self.action_quit()
            return
        if action == "history":
            query = line.split(" ", 1)[1] if " " in line else ""
            self.open_history(query)
            return
        if result.text and action != "send":
            await self.conversation.mount(Note(result.text))
            self.conversation.scroll_end(animate=False)
        if action == "load_model":
            self.start_loading(result.payload)
        elif action in ("new", "opened"):
            self.editing = None
            await self.render_thread()
            self.prompt.focus()  # typing goes on in the prompt, whatever turn was selected
            loaded = self.session.engine.spec if self.session.engine else None
            if action == "opened" and self.session.settings.model != loaded:
                self.start_loading(self.session.settings.model)
        elif action == "send":
            self.notify(result.text)
            await self.submit(
                "//" + result.payload if result.payload.startswith("/") else result.payload
            )
        else:
            await self.update_window()

    def open_history(self, query: str = "") -> None:
        async def opened(conversation_id: int | None) -> None:
            if conversation_id:
                await self.command(f"/history {conversation_id}", restore="")

        self.push_screen(HistoryScreen(self.session, query), opened)

    # -- actions --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return True if (self.generating or self.editing is not None) else None
        if action in ("regenerate", "edit", "new", "history"):
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
        self.prompt.text = target.content
        self.prompt.focus()
        self.prompt.move_cursor(self.prompt.document.end)
        self.update_status()

    def action_copy_reply(self) -> None:
        focused = self.focused
        message = focused.message if isinstance(focused, MessageView) else self.session.last_reply()
        if message is None or not message.content:
            self.notify("no reply to copy yet", severity="warning")
            return
        self.copy_to_clipboard(message.content)
        self.notify(f"copied the reply ({len(message.content)} characters)")

    def action_copy_code(self) -> None:
        reply = self.session.last_reply()
        blocks = CODE_BLOCK.findall(reply.content) if reply else []
        if not blocks:
            self.notify("no code block in the last reply", severity="warning")
            return
        self.copy_to_clipboard(blocks[-1])
        self.notify(f"copied the code block ({len(blocks[-1])} characters)")

    def action_history(self) -> None:
        if not self.generating:
            self.open_history()

    async def action_new(self) -> None:
        if not self.generating:
            await self.command("/new", restore="")

    async def action_quit(self) -> None:
        if self.generating and self._reply_worker is not None:
            self.cancel.set()
            await self._reply_worker.wait()
        self.session.flush()
        self.exit(0)

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
            index = next(
                (
                    i
                    for i, v in enumerate(self.message_views())
                    if v.message.parent is message.parent and v.message.role == message.role
                ),
                None,
            )
            if index is not None:
                self.message_views()[index].focus()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New conversation", "Start a new conversation", self.action_new)
        yield SystemCommand("History", "Open or search saved conversations", self.action_history)
        yield SystemCommand("Regenerate", "Write the last reply again", self.action_regenerate)
        yield SystemCommand("Edit turn", "Edit your last (or selected) turn", self.action_edit)
        yield SystemCommand("Copy reply", "Copy the last reply (OSC 52)", self.action_copy_reply)
        yield SystemCommand("Copy code block", "Copy the last code block", self.action_copy_code)
        yield SystemCommand("Export Markdown", "Save as Markdown in this folder", self._export)
        yield SystemCommand("Help", "Slash commands and keys", self._help)
        from scribe.engine.prompting.templates import list_templates

        for template in list_templates():
            if not template.chat:
                yield SystemCommand(
                    f"Template: {template.name}",
                    template.description,
                    lambda name=template.name: self._run_line(f"/template {name}"),
                )
        yield SystemCommand(
            "Template: none", "Plain chat", lambda: self._run_line("/template none")
        )

    def _run_line(self, line: str) -> None:
        self.call_later(self.command, line, "")

    def _export(self) -> None:
        self._run_line("/export")

    def _help(self) -> None:
        self._run_line("/help")

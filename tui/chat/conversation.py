"""The conversation pane of `scribe chat`: the thread's turns and the notes of slash commands,
the turns outside the model's context window dimmed under a divider."""

from __future__ import annotations

from textual.containers import VerticalScroll

from scribe.engine.chat.messages import Message, message_key
from scribe.engine.chat.session import ChatSession, Reply
from scribe.engine.prompting.chat_window import Window
from scribe.tui.chat.widgets import MessageView, Note, WindowDivider


class Conversation(VerticalScroll):
    def views(self) -> list[MessageView]:
        return list(self.query(MessageView))

    def view_of(self, message: Message) -> MessageView:
        return next(v for v in self.views() if v.message is message)

    async def show_thread(self, session: ChatSession) -> None:
        """The session's thread from scratch (after open, new, edit, branch switch)."""
        await self.remove_children()
        views = [MessageView(m, session.branch_info(m)) for m in session.thread]
        if views:
            await self.mount_all(views)

    async def add_note(self, text: str) -> None:
        await self.mount(Note(text))
        self.scroll_end(animate=False)

    async def mark_window(self, window: Window | None, owner: Reply | None = None) -> None:
        """Dim the turns outside `window`, under one divider. With `owner`, the reply being
        written, only the turns before its user turn can be outside."""
        views = self.views()
        for divider in self.query(WindowDivider):
            await divider.remove()
        if window is None:
            return
        limit = views.index(self.view_of(owner.user)) if owner else len(views)
        outside = [v for v in views[:limit] if message_key(v.message) not in window.in_window]
        for view in views:
            view.set_outside(view in outside)
        if outside:
            first_inside = next((v for v in views if v not in outside), None)
            exchanges_out = sum(1 for v in outside if v.message.role == "user")
            divider = WindowDivider(exchanges_out or len(outside))
            if first_inside is not None:
                await self.mount(divider, before=first_inside)
            else:
                await self.mount(divider)

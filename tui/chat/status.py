"""The status line of `scribe chat`: model, template, what the chat is doing (else the last
reply's speed and ending), options and unsaved messages on the left, the token meter
`used/limit (reserve)` on the right; tinted while the model loads or a reply is written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from scribe.engine.chat.session import ChatSession
from scribe.tui.chat.slash_commands import describe_options

REPLYING = "replying · Esc stops"


class StatusBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        yield Static("", id="meter", markup=False)

    def show(
        self,
        session: ChatSession,
        loading: str | None,
        load_failed: bool,
        activity: str | None,
        meter: str,
    ) -> None:
        """`loading`: the model spec being loaded ("": the default); `activity`: what the chat
        screen is doing (replying, editing a turn), or else the last reply's speed and ending
        (`describe_reply`)."""
        if loading is not None:
            model = f"loading model {loading or '(default)'}…"
        elif load_failed and session.engine is None:
            model = "no model (/model NAME)"
        else:
            model = session.model_name
        template = session.template.name if session.template else "chat"
        parts = [model, f"template {template}"]
        if activity:
            parts.append(activity)
        if session.engine is not None:
            parts.append(describe_options(session))
        if session.save_error:
            parts.append(f"⚠ {session.unsaved} unsaved")
        self.query_one("#status", Static).update(" │ ".join(parts))
        self.query_one("#meter", Static).update(f"tokens {meter}")
        self.set_class(activity == REPLYING or loading is not None, "-busy")

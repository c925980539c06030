"""The keys of `scribe chat`: the chat screen's bindings, and the line /help shows for them, kept
side by side so that they agree."""

from __future__ import annotations

from textual.binding import Binding, BindingType

# On the chat screen, so that the footer under a picker still shows which are enabled there.
# Quit comes first, where the footer has always shown it. Short labels (and Stop shown only when
# it can act) keep them all on an 80-column footer; /help and the tooltips say more.
CHAT_BINDINGS: list[BindingType] = [
    Binding("ctrl+q", "app.quit", "Quit", priority=True),
    Binding("escape", "stop", "Stop"),
    Binding("ctrl+r", "regenerate", "Retry", tooltip="Regenerate the last reply"),
    Binding("f2", "edit", "Edit"),
    Binding("f3", "copy_reply", "Copy", tooltip="Copy the reply"),
    Binding("f4", "copy_code", "Code", tooltip="Copy the last code block"),
    Binding("ctrl+o", "history", "History"),
    Binding("ctrl+n", "new", "New"),
]

KEYS_HELP = (
    "Keys: Enter sends · Ctrl+J new line · Esc stops a reply · Ctrl+R regenerate · "
    "F2 edit your last turn · F3 copy the last reply · F4 copy code block · "
    "Tab/Shift+Tab select a turn: Enter (or F2/F3) edits or copies it, ←/→ switch branches, "
    "typing goes on in the prompt · Ctrl+O history · Ctrl+N new · "
    "Ctrl+P commands and themes · Ctrl+Q quit"
)

"""The keys of `scribe chat`: the chat screen's bindings, and the line /help shows for them, kept
side by side so that they agree."""

from __future__ import annotations

from textual.binding import Binding, BindingType

# On the chat screen, so that the footer under a picker still shows which are enabled there.
# Quit comes first, where the footer has always shown it.
CHAT_BINDINGS: list[BindingType] = [
    Binding("ctrl+q", "app.quit", "Quit", priority=True),
    Binding("escape", "stop", "Stop"),
    Binding("ctrl+r", "regenerate", "Regenerate"),
    Binding("f2", "edit", "Edit"),
    Binding("f3", "copy_reply", "Copy"),
    Binding("f4", "copy_code", "Copy code"),
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

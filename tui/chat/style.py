"""The look of `scribe chat` (Textual CSS). Kept in Python so it ships with the package without
package-data; colours come from the theme, so every Textual theme works."""

CHAT_CSS = """
#conversation {
    height: 1fr;
    padding: 0 1;
    scrollbar-size-vertical: 1;
}

.message {
    height: auto;
    margin: 0 0 1 0;
    padding: 0 1;
    border-left: wide $primary 40%;
}

.message.-user {
    border-left: wide $accent;
    background: $boost;
}

.message:focus {
    border-left: wide $warning;
    background: $boost;
}

.message .role {
    color: $text-muted;
    text-style: bold;
}

.message.-user .role {
    color: $accent;
}

.message .body {
    margin: 0;
    padding: 0;
    background: transparent;
}

.message .body > * {
    margin: 0;
}

/* Turns the model no longer sees: dimmed, and named in the role line. */
.message.-outside {
    opacity: 50%;
    border-left: wide $panel;
}

.message.-outside .role {
    text-style: italic;
}

.note {
    color: $text-muted;
    margin: 0 0 1 0;
    padding: 0 1;
    border-left: wide $secondary 50%;
}

.divider {
    color: $warning;
    text-align: center;
    margin: 0 0 1 0;
}

#prompt {
    height: auto;
    min-height: 3;
    max-height: 12;
    border: round $accent 60%;
    padding: 0 1;
}

#prompt:focus {
    border: round $accent;
}

#statusbar {
    height: 1;
    background: $panel;
}

#statusbar.-busy {
    background: $warning 30%;
}

#status {
    width: 1fr;
    height: 1;
    padding: 0 1;
    text-wrap: nowrap;
    text-overflow: ellipsis;
}

#meter {
    width: auto;
    height: 1;
    padding: 0 1;
    text-style: bold;
}

HistoryScreen {
    align: center middle;
}

#history {
    width: 90%;
    height: 80%;
    border: round $accent;
    background: $surface;
    padding: 0 1;
}

#history-title {
    text-style: bold;
    margin: 0 0 1 0;
}

#history-list {
    height: 1fr;
}
"""

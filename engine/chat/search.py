"""Full-text search: the FTS5 query for the user's words, and snippets made plain text."""

from __future__ import annotations

# Around the matched words of a search snippet; private-use characters, never in real text.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"

# Every matching message with its conversation, best first; the snippet marks its matches.
SEARCH_SQL = (
    "SELECT m.conversation_id, m.id, c.title, c.updated, "
    f"snippet(messages_fts, 0, '{MARK_OPEN}', '{MARK_CLOSE}', '…', 12) AS snip "
    "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
    "JOIN conversations c ON c.id = m.conversation_id "
    "WHERE messages_fts MATCH ? ORDER BY rank"
)


def fts_query(text: str) -> str:
    """Each word quoted, so punctuation in the user's text is never FTS5 syntax. `text` comes
    through `clean_text` first, as everything bound to SQLite does."""
    words = [w.replace('"', '""') for w in text.split()]
    return " ".join(f'"{w}"' for w in words if w.strip('"'))


def unmark(snippet: str) -> tuple[str, list[tuple[int, int]]]:
    """A snippet with MARK_OPEN/MARK_CLOSE around its matches as plain text (whitespace runs as
    one space) and the (start, end) of each match in it."""
    plain: list[str] = []
    marks: list[tuple[int, int]] = []
    start: int | None = None
    for char in " ".join(snippet.split()):
        if char == MARK_OPEN:
            start = len(plain)
        elif char == MARK_CLOSE:
            if start is not None and start < len(plain):
                marks.append((start, len(plain)))
            start = None
        else:
            plain.append(char)
    return "".join(plain), marks

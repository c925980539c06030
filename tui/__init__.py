"""scribe's terminal doors: the CLI (composition root), the chat app and plain line mode."""

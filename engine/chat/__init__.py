"""Conversations: the chat session both chat UIs drive, and the SQLite store that keeps them."""

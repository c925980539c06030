"""The Textual screens of the chat app, one module each."""

"""Turning what the user asks into a prompt that fits: templates, the chat format, windows."""

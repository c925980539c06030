"""The Textual chat app, plain line mode and the slash commands they share."""

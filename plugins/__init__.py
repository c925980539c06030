"""scribe's editor bridge: the language server, JSONL mode and the editor plugins."""

"""The editor bridge: the language server and the JSONL bridge on one completion service."""

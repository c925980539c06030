"""scribe's engine: models, generation, context, templates and fine-tuning.

Imports no UI or server library and never writes to a terminal.
"""

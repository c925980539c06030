"""Fine-tuning: teach a model the user's text or task.

`run_finetune(settings, on_event)` is the one entry point. It reads and splits the data, trains
(full, LoRA, prefix tuning, or a new small model from scratch), evaluates before and after, and
writes a model folder. Progress is reported through `on_event` callbacks (events.py); this package
never prints.
"""

from scribe.engine.finetune.settings import FinetuneSettings

__all__ = ["FinetuneSettings", "run_finetune"]


def run_finetune(settings: FinetuneSettings, on_event=None):  # type: ignore[no-untyped-def]
    from scribe.engine.finetune.run import run_finetune as _run

    return _run(settings, on_event)

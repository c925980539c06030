"""Fine-tuning: teach a model the user's text or task.

`run_finetune(settings, on_event)` is the one entry point. run.py composes the stages, each a
function returning a typed value: the data read and split (dataset.read_data), the base loaded
(base.load_base), the training set tokenized and packed (dataset.training_set), the plan
(planning.make_plan), the base evaluated, training (full, LoRA, prefix tuning, or a new small model
from scratch; training.train), the trained model evaluated (before_after), and the model folder
written (save.save_model). A dry run stops after the plan. Progress is reported through
`on_event` callbacks (events.py); this package never prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scribe.engine.finetune.settings import FinetuneSettings

if TYPE_CHECKING:
    from scribe.engine.finetune.events import EventSink
    from scribe.engine.finetune.result import FinetuneResult

__all__ = ["FinetuneSettings", "run_finetune"]


def run_finetune(settings: FinetuneSettings, on_event: EventSink | None = None) -> FinetuneResult:
    from scribe.engine.finetune.run import run_finetune as _run

    return _run(settings, on_event)

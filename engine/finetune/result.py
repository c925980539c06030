"""What one fine-tuning run returns: a dry run's plan, or the trained and saved model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scribe.engine.finetune.before_after import BeforeAfter
from scribe.engine.finetune.save import SavedModel
from scribe.engine.finetune.trainer import Plan, TrainOutcome


@dataclass(frozen=True)
class DryRun:
    """--dry-run: what training would do, with nothing trained or written."""

    out: Path
    summary: dict[str, Any]  # the data's counts: dataset.TrainingSet.summary
    plan: Plan
    tokens: int  # the tokens the planned steps would train on
    estimated_seconds: float  # the planned steps' time here, by one timed micro-step
    example: str  # one rendered training document, context-only text between ⟦ ⟧


@dataclass(frozen=True)
class Finetuned:
    """A finished run: the stages' values, composed by run.py."""

    out: Path
    summary: dict[str, Any]  # the data's counts: dataset.TrainingSet.summary
    plan: Plan
    outcome: TrainOutcome
    scores: BeforeAfter
    saved: SavedModel | None  # None on every process but rank 0, which alone writes


FinetuneResult = DryRun | Finetuned

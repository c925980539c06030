"""What one fine-tuning run returns: the data summary, the plan, and the before/after figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.engine.finetune.settings import FinetuneSettings
from scribe.engine.finetune.trainer import TrainOutcome


@dataclass
class FinetuneResult:
    out: Path
    settings: FinetuneSettings
    summary: dict[str, Any]
    plan: dict[str, Any] = field(default_factory=dict)
    example: str = ""  # one rendered training document, context-only text between ⟦ ⟧
    dry_run: bool = False
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    samples_before: list[str] = field(default_factory=list)
    samples_after: list[str] = field(default_factory=list)
    outcome: TrainOutcome | None = None
    card: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None

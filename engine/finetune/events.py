"""What a fine-tuning run reports while it works; the CLI renders these (progress bar, tables)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stage:
    """A phase begins (reading data, training a tokenizer, evaluating, saving...)."""

    message: str


@dataclass(frozen=True)
class DataReady:
    summary: dict[str, Any]  # dataset.summarize: files, formats, per-split counts


@dataclass(frozen=True)
class TrainStart:
    total_steps: int
    start_step: int
    tokens_per_step: int
    threads: int
    bf16: bool
    world_size: int
    device: str


@dataclass(frozen=True)
class StepDone:
    step: int
    total_steps: int
    loss: float
    lr: float
    tokens_per_s: float
    epoch: float


@dataclass(frozen=True)
class EvalDone:
    step: int
    val_loss: float
    best_val_loss: float
    improved: bool


@dataclass(frozen=True)
class SampleDone:
    step: int
    samples: list[tuple[str, str]] = field(default_factory=list)  # (prompt, continuation)


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class TrainEnd:
    step: int
    reason: str  # "finished", "early stop", "interrupted"
    best_step: int | None
    best_val_loss: float | None


Event = (
    Stage | DataReady | TrainStart | StepDone | EvalDone | SampleDone | CheckpointSaved | TrainEnd
)
EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default sink: nobody is listening."""

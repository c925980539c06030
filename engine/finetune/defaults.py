"""Training defaults that fit the base model and the data: the learning rate and the epochs.

The learning rate goes by the base's size and the method (LR_TABLE), the number of passes by the
data's size (EPOCH_TABLE), capped so the default run stays short. These tables are the only copy:
`scribe finetune --help` prints them.

A 7M-parameter model needs a learning rate twenty times GPT-2 124M's to move in a few hundred
steps; one rate for all either leaves a small model unchanged or wrecks a large one. Small data
gets more passes (it is cheap, and one pass over 400 KB teaches little), large data fewer.

The epochs are then capped (never below one) so the run takes about DEFAULT_MINUTES (--minutes)
on the machine it runs on: planning times a training step there first (`fitted_epochs`). Where
it cannot (several processes), the rough 2-core speed `cpu_tokens_per_s` stands in. Any flag
given wins over all of this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LR_TABLE = (  # (base parameters below, {method: lr})
    (20e6, {"full": 1e-3, "lora": 3e-3, "prefix": 1e-2}),
    (60e6, {"full": 5e-4, "lora": 2e-3, "prefix": 1e-2}),
    (200e6, {"full": 1e-4, "lora": 1e-3, "prefix": 1e-2}),
    (float("inf"), {"full": 5e-5, "lora": 3e-4, "prefix": 1e-2}),
)
EPOCH_TABLE = (  # (training tokens below, epochs)
    (300_000, 5.0),
    (1_000_000, 3.0),
    (10_000_000, 2.0),
    (float("inf"), 1.0),
)
SCRATCH_LR = 1e-3
DEFAULT_MINUTES = 4.0  # what `scribe finetune notes/ --out NAME` aims to take, evaluation too
TRAIN_SHARE = 0.8  # of those minutes for the training steps; evaluations and saving take the rest


@dataclass(frozen=True)
class Chosen:
    lr: float
    epochs: float
    note: str  # what the user is told at the start, e.g. "lr 1e-3 (7M-parameter base)"


def short(value: float) -> str:
    """1e-3 rather than 0.001 or 1e-03: how learning rates are written."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def learning_rate(params: int, method: str, from_scratch: bool) -> float:
    if from_scratch:
        return SCRATCH_LR
    return next(rates[method] for limit, rates in LR_TABLE if params < limit)


def cpu_tokens_per_s(params: int, method: str) -> float:
    """A 2-core CPU's rough training speed, taken as inversely proportional to the parameters;
    adapters skip most weight gradients, so they go faster."""
    speed = 2.0e10 / max(params, 1)
    return speed * (1.5 if method != "full" else 1.0)


def epochs_for(train_tokens: int, params: int, method: str) -> float:
    epochs = next(e for limit, e in EPOCH_TABLE if train_tokens < limit)
    budget = DEFAULT_MINUTES * 60 * cpu_tokens_per_s(params, method)
    return max(1.0, min(epochs, round(budget / max(train_tokens, 1), 1)))


def fitted_epochs(train_tokens: int, epoch_seconds: float, minutes: float) -> float:
    """The table's epochs for this much data, cut (in tenths, never below one) so training
    takes TRAIN_SHARE of `minutes` at the measured `epoch_seconds`; the rest is evaluation."""
    epochs = next(e for limit, e in EPOCH_TABLE if train_tokens < limit)
    fit = minutes * 60 * TRAIN_SHARE / max(epoch_seconds, 1e-9)
    return max(1.0, min(epochs, math.floor(fit * 10) / 10))


def choose(
    params: int,
    method: str,
    from_scratch: bool,
    train_tokens: int,
    lr: float | None,
    epochs: float | None,
) -> Chosen:
    """The run's lr and epochs: the flags when given, else the tables above."""
    notes = []
    if lr is None:
        lr = learning_rate(params, method, from_scratch)
        notes.append(f"lr {short(lr)} ({params / 1e6:.0f}M-parameter base)")
    if epochs is None:
        epochs = epochs_for(train_tokens, params, method)
        notes.append(f"{epochs:g} epochs of {train_tokens:,} tokens")
    return Chosen(lr, epochs, ", ".join(notes))

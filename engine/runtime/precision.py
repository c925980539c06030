"""Which precision a model's weights run at: the one place that decides (backend.py's table
then decides which code runs them).

The choices are config.toml's (`PRECISIONS`: auto, fp32, bf16, int8, int4). An explicit choice
wins; "auto" takes config.toml's [precision] entry for the model, then the model card's own, then
the rule below. Importing this module does not import torch (`scribe --help` stays instant).
"""

from __future__ import annotations

from pathlib import Path

from scribe.engine.config import PRECISIONS, load_config
from scribe.engine.errors import InputError, ModelError
from scribe.engine.runtime.model_card import ModelCard

AUTO = "auto"
# "auto" is the fastest that keeps quality: int8 (its perplexity gate against fp32 is in
# tests/engine/test_quantize_quality.py) for models big enough for weight reads to dominate a
# step; tiny models run faster, and exactly, in fp32.
AUTO_INT8_MIN_PARAMS = 20_000_000


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
    return precision


def preferred_precision(precision: str, spec: str | None, path: Path, card: ModelCard) -> str:
    """An explicit precision wins; for "auto", config.toml's [precision] entry for the model
    (by the name or path it was given as, or its folder's name), then its card's own."""
    if check_precision(precision) != AUTO:
        return precision
    table = load_config().precision
    for key in (spec, str(path), path.name):
        if key is not None and key in table:
            return table[key]
    chosen = AUTO if card.precision is None else card.precision
    if chosen not in PRECISIONS:
        raise ModelError(
            f"{path / 'scribe.json'}: precision {chosen!r} is not one of "
            f"{', '.join(PRECISIONS)}; fix the card or pass --precision"
        )
    return chosen


def choose_precision(precision: str, params: int) -> str:
    """Resolve "auto" for a model of `params` parameters; other precisions pass through."""
    if check_precision(precision) != AUTO:
        return precision
    if params < AUTO_INT8_MIN_PARAMS:
        return "fp32"
    from scribe.engine.runtime.gpt2.quantize import int8_kernel_available  # imports torch

    return "int8" if int8_kernel_available() else "fp32"

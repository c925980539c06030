"""The model's `scribe.json` card: where it came from, what it learned from, how well it does."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from scribe.engine.finetune.settings import FinetuneSettings
from scribe.engine.runtime.model_files import CARD_FILE


def build_card(
    *,
    settings: FinetuneSettings,
    base_model: str,
    shape: dict[str, Any],
    data: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    training: dict[str, Any],
    output: dict[str, Any],
    chat: dict[str, Any] | None,
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "base_model": base_model,
        "method": "from scratch" if settings.from_scratch else settings.method,
        "format": output.get("format"),
        "shape": shape,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": settings.command,
        "data": data,
        "training": training,
        "metrics": {
            "test_perplexity_before": before.get("perplexity"),
            "test_perplexity_after": after.get("perplexity"),
            "before": before,
            "after": after,
        },
    }
    if chat:
        card["chat"] = chat
    return card


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    path = folder / CARD_FILE
    # Strict JSON: a NaN or infinite figure is written as null, never as a bare NaN.
    text = json.dumps(_finite(card), indent=2, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path

"""The model's `scribe.json` card: where it came from, what it learned from, how well it does."""

from __future__ import annotations

import time
from typing import Any

from scribe.engine.finetune.settings import FinetuneSettings


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

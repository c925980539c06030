"""The model's `scribe.json` card: where it came from, what it learned from, how well it does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from scribe.engine.models import CARD_FILE


def build_card(
    *,
    settings: Any,
    base_model: str,
    shape: dict[str, Any],
    data: dict[str, Any],
    before: dict[str, Any],
    after: dict[str, Any],
    training: dict[str, Any],
    output: dict[str, Any],
    chat: dict[str, str] | None,
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


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    path = folder / CARD_FILE
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

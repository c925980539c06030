"""A model's card (`scribe.json`): the one module that reads and writes it.

The card says how to talk to the model: its chat format (what fine-tuning taught it), its
fill-in-the-middle markers, the precision it prefers, its base model and its metrics. Every
other key (name, description, training details...) is kept as written, so a card read and
written again loses nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scribe.engine.errors import ModelError
from scribe.engine.files.atomic import atomic_write
from scribe.engine.runtime.model_files import CARD_FILE
from scribe.engine.runtime.text_tokens import Framed, frame, prompt_encoder

FIM_KEYS = ("prefix", "suffix", "middle")


@dataclass(frozen=True)
class FimMarkers:
    """A fill-in-the-middle format: the prompt is PREFIX before SUFFIX after MIDDLE, and the
    model writes the middle. `other` keeps the entry's other keys (format, rate)."""

    prefix: str
    suffix: str
    middle: str
    other: dict[str, Any] = field(default_factory=dict)

    @property
    def markers(self) -> tuple[str, str, str]:
        return self.prefix, self.suffix, self.middle

    def token_ids(self, encode: Callable[[str], list[int]]) -> list[int] | None:
        """Each marker's one token id, or None when a marker is not a single token of the
        model (then the format cannot be used). The markers are the frame's own text."""
        encode = prompt_encoder(encode)
        ids = [encode(frame(marker)) for marker in self.markers]
        return [one[0] for one in ids] if all(len(one) == 1 for one in ids) else None

    def prompt(self, before: str, after: str, lead: str = "") -> Framed:
        """The FIM prompt after `lead`: the markers are control tokens, the text around them
        data. The prefix comes first, so consecutive prompts while typing share it."""
        marks = self.prefix, self.suffix, self.middle
        return Framed(f"{lead}{frame(marks[0])}{before}{frame(marks[1])}{after}{frame(marks[2])}")

    def as_dict(self) -> dict[str, Any]:
        return {**self.other, "prefix": self.prefix, "suffix": self.suffix, "middle": self.middle}


def parse_fim(entry: Any) -> FimMarkers | None:
    """The card's `fim` entry: three non-empty marker strings, else None."""
    if not isinstance(entry, dict):
        return None
    marks = [entry.get(key) for key in FIM_KEYS]
    if not all(isinstance(mark, str) and mark for mark in marks):
        return None
    other = {k: v for k, v in entry.items() if k not in FIM_KEYS}
    return FimMarkers(marks[0], marks[1], marks[2], other)


@dataclass(frozen=True)
class ModelCard:
    chat: dict[str, Any] | None = None  # a chat format's mapping (prompting/chat_format.py)
    fim: FimMarkers | None = None
    precision: Any = None  # as written: precision.py checks it when "auto" consults it
    base_model: str | None = None
    metrics: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # every other key, as written

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        rest = dict(data)
        chat = rest.get("chat")
        fim = parse_fim(rest.get("fim"))
        base = rest.get("base_model")
        metrics = rest.get("metrics")
        typed = {
            "chat": chat if isinstance(chat, dict) and chat else None,
            "fim": fim,
            "precision": rest.get("precision"),
            "base_model": base if isinstance(base, str) else None,
            "metrics": metrics if isinstance(metrics, dict) else None,
        }
        for key, value in typed.items():
            if value is not None:  # an unusable entry stays in `extra`, as written
                rest.pop(key, None)
        return cls(**typed, extra=rest)

    def as_dict(self) -> dict[str, Any]:
        """The card as JSON data, every key it was read with included."""
        out = dict(self.extra)
        for key, value in (
            ("chat", self.chat),
            ("fim", self.fim.as_dict() if self.fim else None),
            ("precision", self.precision),
            ("base_model", self.base_model),
            ("metrics", self.metrics),
        ):
            if value is not None:
                out[key] = value
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Any key as written, for those the card does not type (name, description...)."""
        return self.as_dict().get(key, default)

    def with_base_model(self, base: str) -> ModelCard:
        """This card, naming `base` as its base model unless it names one already."""
        return self if self.base_model else replace(self, base_model=base)


def read_card(path: Path) -> ModelCard:
    """The card in model folder `path` (an empty one when there is none)."""
    card = path / CARD_FILE
    if not card.exists():
        return ModelCard()
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{card}: not valid JSON; fix it or delete it") from None
    return ModelCard.from_dict(data if isinstance(data, dict) else {})


def write_card(folder: Path, card: ModelCard | dict[str, Any]) -> Path:
    """Write the card whole; a NaN or infinite figure is written as null (strict JSON)."""
    data = card.as_dict() if isinstance(card, ModelCard) else card
    path = folder / CARD_FILE
    text = json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False)
    atomic_write(path, text + "\n")
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value

"""What a chat needs from a model, and the real one: a loaded model behind a Generator.

The chat logic talks to this small interface only, so the UIs can be tested with a scripted
engine and the generation internals can change freely.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.stream import Stream
from scribe.engine.runtime.text_tokens import reads_frames


class ChatEngine(Protocol):
    name: str
    spec: str | None
    n_positions: int
    card: dict[str, Any]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def answer(
        self, prompt: str, options: GenerationOptions, cancel: threading.Event | None = None
    ) -> Stream: ...


class ModelEngine:
    """A real model: `scribe.engine.runtime.models.load` + `Generator`."""

    def __init__(self, loaded: Any, spec: str | None) -> None:
        from scribe.engine.runtime.generation import Generator

        self.generator = Generator(loaded)
        self.name: str = loaded.name
        self.spec = spec
        self.card: dict[str, Any] = loaded.card.as_dict()
        self.n_positions: int = self.generator.n_positions

    @reads_frames
    def encode(self, text: str) -> list[int]:
        return self.generator.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.generator.decode(ids)

    def answer(
        self, prompt: str, options: GenerationOptions, cancel: threading.Event | None = None
    ) -> Stream:
        """The reply to `prompt`, never a silent blank (`Generator.answer`)."""
        return self.generator.answer(prompt, options, cancel=cancel)


def load_engine(spec: str | None, precision: str = "auto") -> ModelEngine:
    """Load a model for chat (slow: seconds for a real model; call it from a worker)."""
    from scribe.engine.runtime.models import load

    return ModelEngine(load(spec, precision=precision), spec)

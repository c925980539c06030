"""A scripted engine for chat tests: exact word tokens, replies from a script, and gates that let a
test hold a model load or a reply mid-stream (no sleeps, no timing)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.stream import Stream

WORD = re.compile(r"\s*\S+|\s+")


class FakeEngine:
    """Tokens are words with their leading space, so decode(encode(text)) == text."""

    def __init__(
        self,
        replies: list[str] | None = None,
        n_positions: int = 1024,
        name: str = "fake-model",
        card: dict[str, Any] | None = None,
    ) -> None:
        self.replies = list(replies or ["Hello from the fake model."])
        self.n_positions = n_positions
        self.name = name
        self.spec: str | None = name
        self.card = card or {}
        self.prompts: list[str] = []
        self.options: list[GenerationOptions] = []
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []
        # A test may hold the reply after `hold_after` deltas until `release` is set.
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.stopped_early = 0

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in WORD.findall(text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.words)
                self.words.append(piece)
            ids.append(self.vocab[piece])
        return ids

    def decode(self, ids: list[int]) -> str:
        return "".join(self.words[i] for i in ids)

    def answer(
        self, prompt: str, options: GenerationOptions, cancel: threading.Event | None = None
    ) -> Stream:
        self.prompts.append(prompt)
        self.options.append(options)
        reply = self.replies[(len(self.prompts) - 1) % len(self.replies)]
        return Stream(lambda out: self._pieces(out, reply, options, cancel))

    def _pieces(
        self, out: Stream, reply: str, options: GenerationOptions, cancel: threading.Event | None
    ) -> Iterator[str]:
        """The reply word by word, with stats as fixed as the script: 20 tokens/s after the
        first, which comes after 10 ms."""
        all_pieces = WORD.findall(" " + reply)
        pieces = all_pieces[: options.max_new_tokens]
        stats = out.stats
        stats.finish_reason = "length" if len(pieces) < len(all_pieces) else "eos"
        for index, piece in enumerate(pieces):
            if self.hold_after is not None and index == self.hold_after:
                self.holding.set()
                self.release.wait(10)
            if cancel is not None and cancel.is_set():
                self.stopped_early += 1
                stats.finish_reason = "cancelled"
                return
            stats.new_tokens += 1
            stats.first_token_s = 0.01
            stats.decode_s = 0.05 * (stats.new_tokens - 1)
            yield piece


class FakeLoader:
    """Loads `engine` for any spec; with `gate`, waits until the test sets it."""

    def __init__(self, engine: FakeEngine, gate: threading.Event | None = None) -> None:
        self.engine = engine
        self.gate = gate
        self.specs: list[str | None] = []
        self.started = threading.Event()

    def __call__(self, spec: str | None) -> FakeEngine:
        self.specs.append(spec)
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        if spec == "missing-model":
            from scribe.engine.errors import ModelError

            raise ModelError("model 'missing-model' not found; see `scribe models`")
        if spec:
            self.engine.name = spec
            self.engine.spec = spec
        return self.engine

"""The one streaming interface: what `Generator.stream` and `Generator.answer` return.

A `Stream` is iterated for text deltas (whole characters, stop sequences never included) and
carries the figures of its own generation: `stats` fills in while it runs and is final once the
iteration ends, with `finish_reason` saying why it ended. `close()` stops it early, as with any
Python generator. Every door (chat, complete, the editor bridge, fine-tuning's evaluation) reads
generation through this object, so nothing about a request lives on the shared Generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class StreamStats:
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens found in the cache, not computed again
    new_tokens: int = 0
    first_token_s: float = 0.0
    decode_s: float = 0.0  # time spent choosing and computing tokens after the first
    finish_reason: str = ""  # "length", "eos", "stop", "cancelled"
    precision: str = ""  # the weights that ran: fp32, bf16, int8, int4, or "transformers"


class Stream:
    """Text deltas of one generation, with its statistics. `produce(stream)` is the generator
    that yields the deltas; it may replace `stream.stats` (a retried answer reports its last
    attempt)."""

    def __init__(self, produce: Callable[[Stream], Iterator[str]]) -> None:
        self.stats = StreamStats()
        self._deltas = produce(self)

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> str:
        return next(self._deltas)

    def close(self) -> None:
        self._deltas.close()

    @property
    def finish_reason(self) -> str:
        return self.stats.finish_reason

    def text(self) -> str:
        """Run to the end and return the whole text."""
        return "".join(self)

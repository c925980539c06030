"""Prefix reuse: which token ids a backend's KV cache holds, and how many of a new prompt's
leading tokens it can keep. Each backend has one (backend.py); none inherits it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Logits = TypeVar("Logits")


class PrefixReuse:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def reusable(self, ids: list[int]) -> int:
        """How many leading tokens of `ids` already sit in the cache (at least one is always
        fed, for its logits)."""
        common = 0
        for old, new in zip(self.ids, ids, strict=False):
            if old != new:
                break
            common += 1
        return min(common, len(ids) - 1)

    def keep(self, count: int) -> None:
        """The cache now holds only its first `count` tokens."""
        del self.ids[count:]

    def clear(self) -> None:
        self.ids = []

    def prefill(self, ids: list[int], feed: Callable[[list[int]], Logits]) -> tuple[int, Logits]:
        """Keep the cached prefix of `ids` and `feed` the rest: (tokens reused, their logits)."""
        reuse = self.reusable(ids)
        self.keep(reuse)
        return reuse, feed(ids[reuse:])

    def feed(self, new_ids: list[int], forward: Callable[[list[int], int], Logits]) -> Logits:
        """Run `forward(new_ids, tokens already cached)` and record the new ids as cached."""
        logits = forward(new_ids, len(self.ids))
        self.ids.extend(new_ids)
        return logits

"""Turning a growing list of token ids into text deltas of whole characters.

Byte-level BPE tokens can split a UTF-8 character; decoding a sliding window and holding back
a trailing U+FFFD (an incomplete byte sequence) keeps every delta whole (as in text-generation-
inference's incremental decoder).
"""

from __future__ import annotations

from collections.abc import Callable

Decode = Callable[[list[int]], str]

# A UTF-8 character has at most 4 bytes; tokens still undecodable after that are invalid bytes,
# emitted as U+FFFD rather than held back forever.
MAX_HELD_TOKENS = 4


class IncrementalDecoder:
    def __init__(self, decode: Decode, context: list[int] | None = None) -> None:
        # A few context tokens make the first delta decode as it would mid-text (leading spaces).
        self._decode = decode
        self._ids: list[int] = list(context or [])[-4:]
        self._prefix = len(self._ids)  # start of the window we decode
        self._read = len(self._ids)  # ids already turned into text

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        waiting = len(self._ids) - self._read
        if after.endswith("\ufffd") and waiting < MAX_HELD_TOKENS:
            return ""  # a character split across tokens: wait for its remaining bytes
        if len(after) <= len(before):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return after[len(before) :]

    def flush(self) -> str:
        """Whatever is held back at the end (an incomplete character becomes U+FFFD)."""
        before = self._decode(self._ids[self._prefix : self._read])
        after = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return after[len(before) :]

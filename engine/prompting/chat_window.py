"""Which part of a conversation goes into the prompt.

Budget B = n_positions - reserve - MARGIN tokens, counted exactly with the model's tokenizer.
Pinned: the system prompt, the template frame and the current user turn (if that alone is too long,
only the message is cut: in the middle for chat, keeping its tail for "continue"). Earlier turns are
then added newest-first, in whole user+assistant pairs, while they fit. The result says which turns
made it in, so the UI can dim the others, and the figures for the token meter.

The start is sticky: GPT-2's positions are absolute, so a prompt whose oldest turn moved shares no
cached prefix with the last one and must be prefilled whole (seconds on a CPU). Given the oldest
turn of the previous window (`keep_from`), the window keeps starting there while everything after
it fits, and when it no longer does, drops enough old turns to leave RECUT_SLACK of the budget
free, so the next few turns extend the cached prompt again instead of re-cutting it every time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scribe.engine.errors import InputError
from scribe.engine.prompting.chat_format import ChatFormat
from scribe.engine.prompting.context import MARGIN, cut_text
from scribe.engine.prompting.templates import Template

Encode = Callable[[str], list[int]]
Decode = Callable[[list[int]], str]
RECUT_SLACK = 1 / 3  # of the budget, left free when the window start has to move


@dataclass(frozen=True)
class Exchange:
    """One earlier turn: the user's message and the reply to it (None if there was none)."""

    user: str
    assistant: str | None
    ids: tuple[int, ...] = ()  # keys of its messages, reported back in Window.in_window


@dataclass(frozen=True)
class Window:
    prompt: str
    used: int  # exact tokens of `prompt`
    limit: int  # the model's n_positions
    reserve: int  # tokens kept for the reply
    first_included: int  # index of the oldest exchange in the prompt (== len(exchanges): none)
    exchanges: int
    start_key: int | None = None  # a key of the oldest exchange in the prompt: next keep_from
    cut_current: bool = False
    cut_system: bool = False
    in_window: frozenset[int] = field(default_factory=frozenset)  # keys of messages in it

    @property
    def budget(self) -> int:
        return self.limit - self.reserve - MARGIN

    def meter(self) -> str:
        return f"{self.used}/{self.limit} ({self.reserve})"


class TokenCounter:
    """Exact token counts, remembered per text (a conversation re-counts the same turns)."""

    def __init__(self, encode: Encode, size: int = 4096) -> None:
        self.encode = encode
        self.size = size
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if not text:
            return 0
        count = self._cache.get(text)
        if count is None:
            count = len(self.encode(text))
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = count
        return count


def build_window(
    fmt: ChatFormat,
    exchanges: Sequence[Exchange],
    current: str,
    *,
    n_positions: int,
    reserve: int,
    encode: Encode,
    decode: Decode,
    system: str | None = None,
    frame: Template | None = None,
    values: dict[str, str] | None = None,
    cut_mode: str = "middle",
    count: TokenCounter | None = None,
    keep_from: int | None = None,
) -> Window:
    """The prompt for `current` after `exchanges`, fitted into n_positions - reserve;
    `keep_from` is the previous window's `start_key` (see the module's docstring)."""
    count = count or TokenCounter(encode)
    budget = n_positions - reserve - MARGIN
    values = values or {}

    def current_piece(message: str, after_something: bool) -> str:
        if frame is None:
            return fmt.user_turn(message) + fmt.reply
        rendered = frame.render({**values, "input": message})
        return ("\n\n" + rendered) if after_something else rendered

    # Pinned 1: the system prompt (cut in the middle only if it would take over half the budget).
    system_piece = fmt.system_text(system)
    cut_system = False
    if count(system_piece) > budget // 2:
        system_piece = cut_text(system_piece, budget // 2, "middle", encode, decode)
        cut_system = True
    # Pinned 2 and 3: the template frame and the current message, cut to what is left.
    lead = bool(system_piece) or bool(exchanges)
    room = budget - count(system_piece) - count(current_piece("", lead))
    message = current
    cut_current = False
    if count(message) > room:
        message = cut_text(message, max(room, 0), cut_mode, encode, decode)
        cut_current = True
    pinned = count(system_piece) + count(current_piece(message, lead))

    # Earlier turns, newest first, whole pairs, while they fit (and not before a sticky start).
    anchor = _index_of(exchanges, keep_from)
    pieces: list[str] = []
    costs: list[int] = []
    left = budget - pinned
    first = len(exchanges)
    for index in range(len(exchanges) - 1, (anchor or 0) - 1, -1):
        piece = _exchange_piece(fmt, exchanges[index])
        cost = count(piece)
        if cost > left:
            break
        pieces.insert(0, piece)
        costs.insert(0, cost)
        left -= cost
        first = index
    if anchor is not None and first > anchor:  # the start must move: leave room to grow
        while len(pieces) > 1 and left < budget * RECUT_SLACK:
            pieces.pop(0)
            left += costs.pop(0)
            first += 1

    # Pieces were counted apart; BPE may merge across a join, so check the whole and back off.
    target, system_target = count(message), count(system_piece)
    while True:
        lead = bool(system_piece) or bool(pieces)
        prompt = system_piece + "".join(pieces) + current_piece(message, lead)
        used = len(encode(prompt))
        if used <= budget:
            break
        over = used - budget
        if pieces:
            pieces.pop(0)
            first += 1
        elif message:
            target = max(min(target - 1, count(message) - over), 0)
            message = cut_text(message, target, cut_mode, encode, decode) if target else ""
            cut_current = True
        elif system_piece:
            system_target = max(min(system_target - 1, count(system_piece) - over), 0)
            system_piece = (
                cut_text(system_piece, system_target, "middle", encode, decode)
                if system_target
                else ""
            )
            cut_system = True
        else:
            raise InputError(
                f"the template frame alone needs {used} tokens, more than this model's window "
                f"leaves ({budget} of {n_positions} after {reserve} for the reply); use a "
                "shorter template, a lower max_tokens, or a model with a longer context"
            )
    ids = frozenset(i for exchange in exchanges[first:] for i in exchange.ids)
    start_key = exchanges[first].ids[0] if first < len(exchanges) and exchanges[first].ids else None
    return Window(
        prompt=prompt,
        used=used,
        limit=n_positions,
        reserve=reserve,
        first_included=first,
        exchanges=len(exchanges),
        cut_current=cut_current,
        cut_system=cut_system,
        in_window=ids,
        start_key=start_key,
    )


def _index_of(exchanges: Sequence[Exchange], key: int | None) -> int | None:
    """The index of the exchange holding message `key`, or None (no key, or it is gone)."""
    if key is None:
        return None
    for index, exchange in enumerate(exchanges):
        if key in exchange.ids:
            return index
    return None


def _exchange_piece(fmt: ChatFormat, exchange: Exchange) -> str:
    piece = fmt.user_turn(exchange.user)
    if exchange.assistant is not None:
        piece += fmt.assistant_turn(exchange.assistant)
    return piece


def reply_reserve(max_new_tokens: int, n_positions: int) -> int:
    """Tokens kept for the reply: the max_tokens option, but never more than a quarter of the
    window, so a small model still has room for the conversation."""
    return max(1, min(max_new_tokens, n_positions // 4))

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
from scribe.engine.prompting.fitting import MARGIN, cut_text
from scribe.engine.prompting.templates import Template
from scribe.engine.runtime.text_tokens import Framed, marked, prompt_encoder

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
    prompt: str  # a text_tokens.Framed: the frame's markers are control tokens
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
        self.encode = prompt_encoder(encode)
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
    `keep_from` is the previous window's `start_key` (see the module's docstring). The steps:
    pin the system prompt and the current turn, add earlier turns while they fit, then check
    the whole prompt's exact count and back off."""
    fmt = fmt.for_prompt()  # the frames' markers are control tokens, the messages' are text
    encode = prompt_encoder(encode)
    fit = _Fitting(
        fmt,
        n_positions - reserve - MARGIN,
        encode,
        decode,
        count or TokenCounter(encode),
        frame,
        values or {},
        cut_mode,
    )
    pinned = _pin(fit, fmt.system_text(system), current, bool(exchanges))
    lead = bool(pinned.system) or bool(exchanges)
    left = fit.budget - fit.count(pinned.system) - fit.count(fit.closing(pinned.message, lead))
    first, pieces = _earlier_turns(fit, exchanges, left, _index_of(exchanges, keep_from))
    prompt, used, first = _fitted(fit, pinned, pieces, first, n_positions, reserve)
    ids = frozenset(i for exchange in exchanges[first:] for i in exchange.ids)
    start_key = exchanges[first].ids[0] if first < len(exchanges) and exchanges[first].ids else None
    return Window(
        prompt=prompt,
        used=used,
        limit=n_positions,
        reserve=reserve,
        first_included=first,
        exchanges=len(exchanges),
        cut_current=pinned.cut_current,
        cut_system=pinned.cut_system,
        in_window=ids,
        start_key=start_key,
    )


@dataclass(frozen=True)
class _Fitting:
    """What each step of `build_window` works with."""

    fmt: ChatFormat
    budget: int
    encode: Encode
    decode: Decode
    count: TokenCounter
    frame: Template | None
    values: dict[str, str]
    cut_mode: str  # how the current message is cut

    def closing(self, message: str, after_something: bool) -> str:
        """The current turn and the reply cue (or the template framing it)."""
        if self.frame is None:
            return self.fmt.user_turn(message) + self.fmt.reply_text()
        rendered = marked(self.frame.render({**self.values, "input": message}))
        return ("\n\n" + rendered) if after_something else rendered

    def cut(self, text: str, tokens: int, mode: str) -> str:
        return cut_text(text, tokens, mode, self.encode, self.decode)


@dataclass
class _Pinned:
    """The parts always in the prompt, as cut so far."""

    system: str
    message: str
    cut_system: bool = False
    cut_current: bool = False


def _pin(fit: _Fitting, system: str, current: str, has_exchanges: bool) -> _Pinned:
    """The system prompt (cut in the middle only if it would take over half the budget), then
    the template frame and the current message, cut to what is left."""
    pinned = _Pinned(system, current)
    if fit.count(system) > fit.budget // 2:
        pinned.system = fit.cut(system, fit.budget // 2, "middle")
        pinned.cut_system = True
    lead = bool(pinned.system) or has_exchanges
    room = fit.budget - fit.count(pinned.system) - fit.count(fit.closing("", lead))
    if fit.count(current) > room:
        pinned.message = fit.cut(current, max(room, 0), fit.cut_mode)
        pinned.cut_current = True
    return pinned


def _earlier_turns(
    fit: _Fitting, exchanges: Sequence[Exchange], left: int, anchor: int | None
) -> tuple[int, list[str]]:
    """Earlier turns, newest first, whole pairs, while they fit in `left` tokens (and not
    before a sticky start at `anchor`): the index of the oldest one in, and their text."""
    pieces: list[str] = []
    costs: list[int] = []
    first = len(exchanges)
    for index in range(len(exchanges) - 1, (anchor or 0) - 1, -1):
        piece = _exchange_piece(fit.fmt, exchanges[index])
        cost = fit.count(piece)
        if cost > left:
            break
        pieces.insert(0, piece)
        costs.insert(0, cost)
        left -= cost
        first = index
    if anchor is not None and first > anchor:  # the start must move: leave room to grow
        while len(pieces) > 1 and left < fit.budget * RECUT_SLACK:
            pieces.pop(0)
            left += costs.pop(0)
            first += 1
    return first, pieces


def _fitted(
    fit: _Fitting,
    pinned: _Pinned,
    pieces: list[str],
    first: int,
    n_positions: int,
    reserve: int,
) -> tuple[str, int, int]:
    """The prompt, its exact token count and the index of its oldest turn. Pieces were counted
    apart and BPE may merge across a join, so the whole is counted, and while it is over the
    budget the oldest turn goes, then the current message is cut, then the system prompt."""
    target, system_target = fit.count(pinned.message), fit.count(pinned.system)
    while True:
        lead = bool(pinned.system) or bool(pieces)
        prompt = pinned.system + "".join(pieces) + fit.closing(pinned.message, lead)
        used = len(fit.encode(prompt))
        if used <= fit.budget:
            return Framed(prompt), used, first
        over = used - fit.budget
        if pieces:
            pieces.pop(0)
            first += 1
        elif pinned.message:
            target = max(min(target - 1, fit.count(pinned.message) - over), 0)
            pinned.message = fit.cut(pinned.message, target, fit.cut_mode) if target else ""
            pinned.cut_current = True
        elif pinned.system:
            system_target = max(min(system_target - 1, fit.count(pinned.system) - over), 0)
            pinned.system = fit.cut(pinned.system, system_target, "middle") if system_target else ""
            pinned.cut_system = True
        else:
            raise InputError(
                f"the template frame alone needs {used} tokens, more than this model's window "
                f"leaves ({fit.budget} of {n_positions} after {reserve} for the reply); use a "
                "shorter template, a lower max_tokens, or a model with a longer context"
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

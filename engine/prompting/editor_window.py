"""The editor's prompt: the text before the cursor within a token budget, and fill-in-the-middle
when the model's card declares it.

The window's start is kept put between keystrokes (an "anchor" per document), so consecutive
prompts share a long prefix and the engine's prefix cache only feeds the few new tokens. When the
text from the anchor outgrows the budget, the anchor jumps forward so the prompt fills `REFILL` of
the budget, leaving room to grow before the next jump (each jump costs one full prefill).

`EditorWindows.prompt` builds one request's prompt in steps, each a function of its own:
`reply_tokens` (how long the suggestion may be), `prompt_budget` (what is left of the window),
`fim_shares` (the split between the text before and after the cursor), `fim_suffix` (the text
after), `PromptWindow.prompt` (the text before), then the FIM frame, or the text before with its
trailing blanks healed.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scribe.engine.prompting.fitting import MARGIN

Encode = Callable[[str], list[int]]

# The engine's bound (runtime/generation.py), repeated so that importing this module (and the
# editor servers) does not import torch; a test keeps the two equal.
CHARS_PER_TOKEN_BOUND = 64
REFILL = 0.75  # fraction of the budget a re-anchored prompt uses
FINGERPRINT = 48  # characters after the anchor that must be unchanged to keep it

DEFAULT_MAX_TOKENS = 32  # an editor suggestion's length unless the client asks otherwise
MAX_WINDOWS = 64  # documents whose prompt anchor is remembered
FIM_SUFFIX_TOKENS = 128  # text after the cursor a FIM prompt shows: a few lines is what matters
# A FIM prompt is PREFIX before SUFFIX after MIDDLE: three markers, each a single token of the
# model (a card whose markers are not single tokens gets no FIM), so three tokens of the budget.
FIM_MARKER_TOKENS = 3


class FimFrame(Protocol):
    """A model's fill-in-the-middle format (the servers' FimFormat is one)."""

    def prompt(self, before: str, after: str) -> str: ...


class CursorRequest(Protocol):
    """What the window reads of a completion request (the servers' CompletionRequest is one)."""

    @property
    def document(self) -> str: ...  # a key: requests for one document share its anchor
    @property
    def text(self) -> str: ...  # the whole document (or all text before the cursor)
    @property
    def cursor(self) -> int: ...  # character offset of the cursor in `text`
    @property
    def suffix(self) -> str: ...  # text after the cursor
    @property
    def max_tokens(self) -> int: ...  # the longest suggestion asked for


@dataclass(frozen=True)
class EditorPrompt:
    text: str  # what the model reads
    heal: bool  # the blanks before the cursor are healed (Generator.stream's `heal`)
    max_tokens: int  # the suggestion's length, within the model's window


@dataclass
class Anchor:
    offset: int  # character offset of the prompt's start in the document
    fingerprint: str  # the document's text at that offset when the anchor was set


class PromptWindow:
    """Chooses the prompt text for one document, keeping its start stable between requests."""

    def __init__(self, encode: Encode, budget_tokens: int) -> None:
        if budget_tokens < 1:
            raise ValueError("the prompt budget must be at least one token")
        self._encode = encode
        self.budget = budget_tokens
        self._anchor: Anchor | None = None

    def prompt(self, text: str, cursor: int) -> str:
        """The prompt for a completion at `cursor` (a character offset into `text`)."""
        cursor = max(0, min(cursor, len(text)))
        if self._anchor is not None:
            start = self._locate(self._anchor, text, cursor)
            if start is not None:
                candidate = text[start:cursor]
                if len(self._encode(candidate)) <= self.budget:
                    self._anchor.offset = start
                    return candidate
        start = self._choose_start(text, cursor)
        self._anchor = Anchor(start, text[start : start + FINGERPRINT])
        return text[start:cursor]

    @property
    def anchor_offset(self) -> int | None:
        return None if self._anchor is None else self._anchor.offset

    def _locate(self, anchor: Anchor, text: str, cursor: int) -> int | None:
        """Where the anchor's text is now: at its offset, or moved by an edit above it."""
        if anchor.offset <= cursor and text.startswith(anchor.fingerprint, anchor.offset):
            return anchor.offset
        lo = max(0, cursor - self.budget * CHARS_PER_TOKEN_BOUND)
        found = text.rfind(anchor.fingerprint, lo, cursor + len(anchor.fingerprint))
        return found if 0 <= found <= cursor else None

    def _choose_start(self, text: str, cursor: int) -> int:
        """A start that leaves the prompt at most REFILL of the budget, on a word or line start."""
        lo = max(0, cursor - self.budget * CHARS_PER_TOKEN_BOUND)
        before = text[lo:cursor]
        ids = self._encode(before)
        keep = max(1, int(self.budget * REFILL))
        if len(ids) <= self.budget:
            return lo if lo == 0 else _word_start(text, lo, cursor)
        # Find the character offset where the last `keep` tokens begin: shrink a character window
        # until it fits (a few tokenizer calls; each is fast).
        start = cursor - len(before) * keep // len(ids)
        start = _word_start(text, start, cursor)
        while start < cursor and len(self._encode(text[start:cursor])) > keep:
            start = _word_start(text, start + max(1, (cursor - start) // 16), cursor)
        return start


WORD_START = re.compile(r"\s\S")  # a blank, then the first character of a word


def _word_start(text: str, offset: int, limit: int) -> int:
    """The first line start at or after `offset` if one is near, else the next word start."""
    newline = text.find("\n", offset, min(limit, offset + 200))
    if newline >= 0:
        return newline + 1
    match = WORD_START.search(text, offset, limit)
    return match.start() + 1 if match else offset


def reply_tokens(requested: int, n_positions: int) -> int:
    """The suggestion's length: what was asked, at most half the window, at least one token."""
    return max(1, min(requested, n_positions // 2))


def prompt_budget(n_positions: int, max_tokens: int) -> int:
    """Tokens the prompt may take: the window less the reply and the fitting margin."""
    return n_positions - max_tokens - MARGIN


def fim_shares(budget: int) -> tuple[int, int]:
    """(tokens for the text before the cursor, tokens for the text after) of a FIM prompt's
    `budget`. The share after is fixed, so the window before the cursor, and with it its anchor
    and the prefix cache, stays the same from one keystroke to the next."""
    after = min(FIM_SUFFIX_TOKENS, budget // 4)
    return budget - after - FIM_MARKER_TOKENS, after


def fim_suffix(suffix: str, encode: Encode, budget: int) -> str:
    """The text after the cursor that a FIM prompt shows: whole lines (the cursor's line
    always) up to `budget` tokens, so the model sees what it must lead into."""
    lines = suffix[: budget * CHARS_PER_TOKEN_BOUND].split("\n")
    kept = lines[0]
    for line in lines[1:]:
        candidate = f"{kept}\n{line}"
        if len(encode(candidate)) > budget:
            break
        kept = candidate
    if len(encode(kept)) > budget:  # one very long first line: keep its start
        cut = kept[: len(kept) * budget // max(1, len(encode(kept)))]
        kept = cut.rsplit(" ", 1)[0] if " " in cut else cut  # end on a word
    return kept


class EditorWindows:
    """One loaded model's editor prompts: a window per document (the most recent MAX_WINDOWS),
    and the FIM frame when the model's card declares one."""

    def __init__(self, encode: Encode, n_positions: int, fim: FimFrame | None = None) -> None:
        self.encode = encode
        self.n_positions = n_positions
        self.fim = fim
        self._windows: OrderedDict[str, PromptWindow] = OrderedDict()

    def prompt(self, request: CursorRequest) -> EditorPrompt:
        max_tokens = reply_tokens(request.max_tokens, self.n_positions)
        budget = prompt_budget(self.n_positions, max_tokens)
        after = ""
        if self.fim is not None:
            budget, share = fim_shares(budget)
            if request.suffix.strip():
                after = fim_suffix(request.suffix, self.encode, share)
        before = self.window(request.document, budget).prompt(request.text, request.cursor)
        if after and self.fim is not None:
            # Fill in the middle: the model reads both sides; blanks before the cursor stay,
            # as in training, where the split points fall anywhere.
            return EditorPrompt(self.fim.prompt(before, after), False, max_tokens)
        return EditorPrompt(before, True, max_tokens)

    def window(self, document: str, budget: int) -> PromptWindow:
        """The document's window (a new one when the budget changed), now the most recent."""
        window = self._windows.get(document)
        if window is None or window.budget != budget:
            window = PromptWindow(self.encode, budget)
            self._windows[document] = window
        self._windows.move_to_end(document)
        while len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)
        return window

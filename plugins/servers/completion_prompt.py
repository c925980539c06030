"""The prompt window for editor completion, and the rules that shape what comes back.

The prompt is the text before the cursor within a token budget. Its start is kept put between
keystrokes (an "anchor" per document), so consecutive prompts share a long prefix and the
engine's prefix cache only feeds the few new tokens. When the text from the anchor outgrows the
budget, the anchor jumps forward so the prompt fills `REFILL` of the budget, leaving room to
grow before the next jump (each jump costs one full prefill).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from scribe.engine.runtime.model_card import ModelCard, parse_fim

Encode = Callable[[str], list[int]]

# The engine's bound (runtime/generation.py), repeated so that importing this module (and the
# server) does not import torch; a test keeps the two equal.
CHARS_PER_TOKEN_BOUND = 64
REFILL = 0.75  # fraction of the budget a re-anchored prompt uses
FINGERPRINT = 48  # characters after the anchor that must be unchanged to keep it

PROSE_LANGUAGES = frozenset(
    {
        "markdown",
        "text",
        "plaintext",
        "txt",
        "rst",
        "restructuredtext",
        "asciidoc",
        "org",
        "tex",
        "latex",
        "gitcommit",
        "mail",
        "html",
        "",
    }
)


def is_prose(language: str | None) -> bool:
    return (language or "").lower() in PROSE_LANGUAGES


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


@dataclass(frozen=True)
class FimFormat:
    """The fill-in-the-middle tokens a model's card declares (`"fim"` in scribe.json): the
    prompt is PREFIX before SUFFIX after MIDDLE, and the model writes the middle."""

    prefix: str
    suffix: str
    middle: str

    @classmethod
    def from_card(cls, card: ModelCard | dict, encode: Encode) -> FimFormat | None:
        """The card's format, if it has one whose markers are single tokens of the model."""
        fim = card.fim if isinstance(card, ModelCard) else parse_fim(card.get("fim"))
        if fim is None or fim.token_ids(encode) is None:
            return None
        return cls(*fim.markers)

    def prompt(self, before: str, after: str) -> str:
        # The prefix comes first, so consecutive prompts while typing share it (prefix cache).
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


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


def split_trailing_blanks(prompt: str) -> tuple[str, str]:
    """('The cat', ' ') for 'The cat ': a BPE model predicts ' sat' better than 'sat' after a
    lone space token, so the space is given back by the model and then removed from its text."""
    stripped = prompt.rstrip(" \t")
    return stripped, prompt[len(stripped) :]


def trim_suffix_overlap(completion: str, suffix: str) -> str:
    """Drop the end of `completion` that repeats what already follows the cursor."""
    line = suffix.split("\n", 1)[0]
    if not line.strip():
        return completion
    # The completion re-types the rest of the line (e.g. a closing bracket or the next words).
    core = line.strip()
    if len(core) >= 3:
        where = completion.find(core)
        if where >= 0:
            return completion[:where].rstrip(" \t") if where else ""
    for size in range(min(len(completion), len(line)), 0, -1):
        overlap = line[:size]
        # One or two letters are too weak a match ("th|e" + "the"); brackets and quotes are not.
        if completion.endswith(overlap) and (size >= 3 or not overlap[-1].isalnum()):
            return completion[:-size]
    return completion


# A sentence ends at . ! ? or … (with closing quotes or brackets) followed by white space.
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s)")


class StopRule:
    """Decides, while text streams in, where a suggestion ends: prose at a sentence or paragraph
    end, code at the end of its first line with content."""

    def __init__(self, prose: bool) -> None:
        self.prose = prose
        self.text = ""
        self.done = False

    def feed(self, delta: str) -> bool:
        """Add a delta; returns True once the suggestion is complete (self.text is final)."""
        if self.done:
            return True
        self.text += delta
        cut = self._cut_point()
        if cut is not None:
            self.text = self.text[:cut]
            self.done = True
        return self.done

    def _cut_point(self) -> int | None:
        text = self.text
        if self.prose:
            paragraph = text.find("\n\n")
            content = len(text) - len(text.lstrip())
            sentence = SENTENCE_END.search(text, content)
            ends = [i for i in (paragraph, sentence.end() if sentence else -1) if i >= 0]
            return min(ends) if ends else None
        content = len(text) - len(text.lstrip())
        newline = text.find("\n", content)
        return newline if newline >= 0 and content < len(text) else None

    def finish(self) -> str:
        """The suggestion as it stands: no trailing newlines, nothing if it is only blanks."""
        text = self.text.rstrip("\n")
        return text if text.strip() else ""

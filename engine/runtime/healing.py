"""Token healing for blanks at the end of a prompt.

A byte-level BPE tokenizer glues a run of blanks to the word after it: "):\\n    return" is
`):` `\\n   ` ` return`. A prompt that ends in the blanks alone ("):\\n    ", the cursor on a
fresh indented line; "The cat ", a space after a word) ends in a token the model rarely saw
followed by a word, so it writes something odd or ends the text at once. The caller cuts those
blanks off the prompt and the generator makes its first tokens spell them out (`HealedStart`):
the model picks the tokenization it knows, and the blanks, already on the user's screen, are
left out of the text it streams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

HEAL_MAX_CHARS = 64  # blanks a reply spells out at most: a line break and deep indentation


class BlankTokens:
    """A vocabulary's tokens that start with a blank, by id, so a healed start checks a few
    hundred candidates rather than every token."""

    def __init__(self, texts: Iterable[str]) -> None:
        """`texts`: every token's text, in id order."""
        self.texts = {i: t for i, t in enumerate(texts) if t[:1].isspace()}


class HealedStart:
    """The reply must begin with `blanks`: until it has spelled them out, only tokens that
    continue them (a prefix of what is left, or one that covers it and goes on) may be chosen.
    `visible` then takes the blanks off the streamed text."""

    def __init__(self, blanks: str, tokens: BlankTokens) -> None:
        self.left = blanks
        self.tokens = tokens
        self._unshown = len(blanks)  # characters of the blanks not yet removed from the text

    @property
    def active(self) -> bool:
        return bool(self.left)

    def allowed(self) -> Sequence[int]:
        """The ids that may come next while the blanks are not yet spelled out (none: the
        constraint is dropped)."""
        left = self.left
        ids = [i for i, t in self.tokens.texts.items() if t.startswith(left) or left.startswith(t)]
        if not ids:  # a vocabulary that cannot spell them: the reply starts unconstrained
            self.left, self._unshown = "", 0
        return ids

    def chose(self, text: str) -> None:
        """Record the text of the token just chosen."""
        self.left = self.left[len(text) :] if self.left.startswith(text) else ""

    def visible(self, delta: str) -> str:
        """The streamed delta without the blanks the user already typed."""
        cut = min(self._unshown, len(delta))
        self._unshown -= cut
        return delta[cut:]


def split_trailing_blanks(prompt: str) -> tuple[str, str]:
    """('The cat', ' ') for 'The cat ', ('):', '\\n    ') for '):\\n    ': the blanks a healed
    start gives back (see the module's docstring). At most HEAL_MAX_CHARS of them: a longer run
    (a pasted page of blank lines) keeps the rest in the prompt."""
    end = prompt[-HEAL_MAX_CHARS:]
    blanks = end[len(end.rstrip(" \t\n")) :]
    return prompt[: len(prompt) - len(blanks)], blanks

"""What the editor servers add to the engine's editor window (engine/prompting/editor_window.py):
the fill-in-the-middle format a model's card declares, and the rules that shape what comes back
(where a suggestion ends, what of it the text after the cursor already holds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scribe.engine.prompting.editor_window import Encode
from scribe.engine.runtime.model_card import FimMarkers, ModelCard, parse_fim

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

    def prompt(self, before: str, after: str, lead: str = "") -> str:
        """The card's FIM prompt (model_card.FimMarkers.prompt: markers as control tokens)."""
        return FimMarkers(self.prefix, self.suffix, self.middle).prompt(before, after, lead)


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

"""Extractive summaries and titles, and the checks a model's summary or title must pass (a
template asks for them with `check = "summary"` or `check = "title"`, as the built-in summarize
and title do).

A small model asked for a summary writes something summary-shaped that is rarely about the text
("- Telay, Telay"). A summary made of the text's own most central sentences is never wrong
about it. So the model's answer is kept only when it reads as a summary of the text
(`plausible_summary`): real words, most of its content words taken from the text, no phrase
repeated, shorter than the text. Otherwise the answer is `summary(text)`: the sentences whose
content words the rest of the text uses most (a sentence's score is the mean, over its content
words, of how many other sentences use the word; the first sentence is favoured, as a lead
usually states the point), in the text's order, within a word budget. A sentence that shares
no word with the others (an aside) is never added to one already chosen.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from scribe.engine.prompting.proofread import FUNCTION_WORDS, is_word

SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]*[A-Z0-9])")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
LEAD_BONUS = 1.25  # the first sentence of a text often states its point
MAX_WORDS = 60
SHORTEST = 20  # a text this short is its own summary; longer ones get half their length at most
# A summary's content words mostly come from the text; a made-up one does not.
MIN_GROUNDED = 0.6
MIN_REAL = 0.9  # share of a summary's words a dictionary knows
REPEATED = re.compile(r"\b(\w+(?: \w+){2,3})\b.*\b\1\b", re.IGNORECASE | re.DOTALL)


def sentences(text: str) -> list[str]:
    """The text's sentences, blank-separated blocks first, each with its spaces collapsed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        block = " ".join(block.split())
        out += [s.strip() for s in SENTENCE_END.split(block) if s.strip()]
    return out


def content_words(text: str) -> list[str]:
    return [w for w in (m.group().lower() for m in WORD.finditer(text)) if w not in FUNCTION_WORDS]


def centrality(found: list[str]) -> list[float]:
    """Each sentence's score: the mean, over its content words, of how many other sentences use
    the word, times LEAD_BONUS for the first."""
    words = [set(content_words(s)) for s in found]
    counts = Counter(w for own in words for w in own)
    scores = [sum(counts[w] - 1 for w in own) / len(own) if own else 0.0 for own in words]
    if scores:
        scores[0] *= LEAD_BONUS
    return scores


def summary(text: str, max_words: int = MAX_WORDS) -> str:
    """The text's most central sentences, in its order, within half the text's words and at
    most `max_words` (the best sentence is kept whole even when it is longer); the text itself
    when it has at most SHORTEST words."""
    found = sentences(text)
    total = len(" ".join(found).split())
    if total <= SHORTEST:
        return " ".join(found)
    max_words = min(max_words, max(SHORTEST, total // 2))
    scores = centrality(found)
    chosen: list[int] = []
    used = 0
    for index in sorted(range(len(found)), key=scores.__getitem__, reverse=True):
        size = len(found[index].split())
        if chosen and (used + size > max_words or scores[index] == 0):
            continue
        chosen.append(index)
        used += size
    return " ".join(found[i] for i in sorted(chosen))


def real_words(words: list[str]) -> bool:
    """Whether the dictionary knows MIN_REAL of the words (punctuation and numbers aside)."""
    plain = [w.strip(".,;:!?\"'()[]-").lower() for w in words]
    plain = [w for w in plain if w.isalpha()]
    return bool(plain) and sum(is_word(w) for w in plain) >= MIN_REAL * len(plain)


def plausible_summary(text: str, answer: str) -> bool:
    """Whether `answer` reads as a summary of `text` (see the module's docstring)."""
    words = answer.split()
    if len(words) < 3 or len(words) > max(12, len(text.split())):
        return False
    if REPEATED.search(answer) or not real_words(words):
        return False
    own = content_words(answer)
    source = set(content_words(text))
    return bool(own) and sum(w in source for w in own) >= MIN_GROUNDED * len(own)


# -- titles -------------------------------------------------------------------------------------
TITLE_WORDS = 12  # a title is one line of at most this many words
CLAUSE = re.compile(r"[,;:()]| - | -- | (?:and|but|which|because|so|while|when|where) ")
MIN_TITLE_GROUNDED = 1 / 3  # a title may name its subject in its own words, not only in them


def title(text: str) -> str:
    """A title made from the text: its most central sentence when that is short, else the
    sentence's first clause when that is, else its most used content words; capitalised."""
    found = sentences(text) or [" ".join(text.split())]
    scores = centrality(found)
    best = found[scores.index(max(scores))].rstrip(".!?")
    if len(best.split()) <= TITLE_WORDS:
        return best[:1].upper() + best[1:]
    clause = CLAUSE.split(best)[0].strip()
    if 3 <= len(clause.split()) <= TITLE_WORDS:
        return clause[:1].upper() + clause[1:]
    counts = Counter(content_words(text))
    top = sorted(counts, key=lambda w: (-counts[w], text.lower().find(w)))[:4]
    return " ".join(w.capitalize() for w in top) or best[:80]


def plausible_title(text: str, answer: str) -> bool:
    """Whether `answer` reads as a title for `text`: one line of at most TITLE_WORDS real words,
    no content word twice, a third of its content words (at least one) from the text."""
    answer = answer.strip()
    words = answer.split()
    if not words or len(words) > TITLE_WORDS or "\n" in answer or not real_words(words):
        return False
    own = content_words(answer)
    if len(own) != len(set(own)):
        return False
    source = set(content_words(text))
    grounded = sum(w in source for w in own)
    return grounded >= 1 and grounded >= MIN_TITLE_GROUNDED * len(own)


# A template's `check`: (is the model's answer one, make one from the text).
CHECKS: dict[str, tuple[Callable[[str, str], bool], Callable[[str], str]]] = {
    "summary": (plausible_summary, summary),
    "title": (plausible_title, title),
}

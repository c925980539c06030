"""Rule-based proofreading, run on a template's $input before the model sees it (a template asks
for it with `proofread = true`; the built-in fix-grammar does).

A small model rewrites a sentence it was asked to correct about as often as it fixes it, and a
misspelt word is the error it fixes least: it has never seen "definately", so it copies it.
Misspellings and mechanical slips have exact answers, so they are fixed here first, by
dictionary and rule, and the model is left with what needs the sentence's sense (agreement,
tense, a missing word). Each rule leaves alone what it cannot be sure of:

- a word the dictionary does not know (`pyspellchecker`'s English word frequencies) becomes the
  most frequent known word one edit away, when there is one; a few words run together ("alot")
  are split; words with capitals inside, digits or underscores are names or code and are kept,
  and so are British spellings (the dictionary is American: "centre" is kept because "center"
  is known) and words the only fix for is an accent;
- a lone "i" becomes "I", a lower-case day or month gets its capital ("may" and "march" are
  also ordinary words and are kept), and so does the first letter of a sentence;
- a missing apostrophe in a contraction ("doesnt", "cant") is put back, and a few phrases that
  are always wrong are mended ("could of" -> "could have", "their is" -> "there is", "its been"
  -> "it's been", "your welcome" -> "you're welcome");
- a word written twice ("the the") is written once ("had had" and "that that" can be right);
- "a" before a vowel sound becomes "an" and "an" before a consonant becomes "a", by the word's
  first letters with the common exceptions ("a user", "an hour").

The model's answer is then proofread too and checked (`plausible_fix`): a correction changes a
few words, drops no word that carries meaning, writes only real words and repeats no phrase.
An answer that fails (a small model sometimes merges two words, drops a noun or stutters) gives
way to the proofread text.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import cache
from pathlib import Path
from typing import Any

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
MIN_SPELLED = 4  # shorter unknown words are more often names, units or abbreviations
RUN_TOGETHER = {
    "alot": "a lot",
    "infront": "in front",
    "aswell": "as well",
    "incase": "in case",
    "eachother": "each other",
    "atleast": "at least",
    "everytime": "every time",
    "noone": "no one",
}
# Contractions written without their apostrophe; none of these spellings is also a word.
CONTRACTIONS = {
    w.replace("'", ""): w
    for w in """doesn't don't didn't isn't aren't wasn't weren't hasn't haven't hadn't can't
    couldn't shouldn't wouldn't mustn't needn't won't i'm i've i'll you're you've they're
    they've we've that's there's what's let's""".split()
    if w.replace("'", "") not in ("wont", "well", "were", "ill", "lets", "shell", "hell", "id")
}
# Phrases that are always wrong, and their mending (LanguageTool has rules like these).
PHRASES = [
    (re.compile(r"\b(could|should|would|must|might) of\b", re.IGNORECASE), r"\1 have"),
    (re.compile(r"\b([Tt])heir (is|are|was|were)\b"), r"\1here \2"),
    (re.compile(r"\b([Ii])ts (been|going to|not|a|an|time)\b"), r"\1t's \2"),
    (re.compile(r"\b([Tt])heir going to\b"), r"\1hey're going to"),
    (re.compile(r"\b([Yy])our welcome\b"), r"\1ou're welcome"),
]
# British endings and their American forms: a word whose American form is known is not a typo.
BRITISH = [
    ("our", "or"),
    ("tre", "ter"),
    ("ise", "ize"),
    ("ised", "ized"),
    ("yse", "yze"),
    ("ence", "ense"),
]
BRITISH_INSIDE = [
    ("our", "or"),
    ("isa", "iza"),
    ("ising", "izing"),
    ("lled", "led"),
    ("lling", "ling"),
    ("ogue", "og"),
    ("tres", "ters"),
]
CALENDAR = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|april|june"
    r"|july|august|september|october|november|december)(?=s?\b|'s\b)"
)
DOUBLED = re.compile(r"\b([A-Za-z]+) \1\b", re.IGNORECASE)
DOUBLE_ALLOWED = {"had", "that"}
ARTICLE = re.compile(r"\b([Aa]n?) ([A-Za-z]+)")
# Vowel letters with a consonant sound, and a silent h: they take the other article.
A_BEFORE = ("uni", "use", "usu", "uti", "ure", "one", "once", "eu", "ewe")
AN_BEFORE = ("hour", "honest", "honor", "honour", "heir")
SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")
LONE_I = re.compile(r"\bi\b(?=('(m|ve|ll|d))?\b)")


@cache
def _dictionary() -> Any:
    from spellchecker import SpellChecker

    # One edit away only: two edits reach too many real words from a name or a term.
    dictionary = SpellChecker(distance=1)
    # The embedded model's corpus words (each seen 3+ times in its documentation, code and
    # prose): the technical terms ("numpy") a general dictionary would "correct".
    dictionary.word_frequency.load_words(_corpus_words())
    return dictionary


def _corpus_words() -> list[str]:
    path = Path(__file__).resolve().parent.parent / "default_model" / "words.txt"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def proofread(text: str) -> str:
    """`text` with its sure mechanical errors fixed (see the module's docstring)."""
    text = WORD.sub(lambda m: _contraction(m.group()), text)
    text = _spelling(text)
    for pattern, mended in PHRASES:
        text = pattern.sub(mended, text)
    text = LONE_I.sub("I", text)
    text = CALENDAR.sub(lambda m: m.group().capitalize(), text)
    text = DOUBLED.sub(_one_of_doubled, text)
    text = ARTICLE.sub(_article, text)
    return SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def _contraction(word: str) -> str:
    full = CONTRACTIONS.get(word.lower())
    if full is None:
        return word
    return full[0].upper() + full[1:] if word[0].isupper() else full


def _spelling(text: str) -> str:
    words = {m.group() for m in WORD.finditer(text)}
    candidates = [w for w in words if len(w) >= MIN_SPELLED and _plain(w)]
    if not candidates:
        return text
    dictionary = _dictionary()
    unknown = dictionary.unknown(w.lower() for w in candidates)
    fixes = {}
    for word in candidates:
        lower = word.lower()
        if lower not in unknown or _british(lower, dictionary):
            continue
        better = RUN_TOGETHER.get(lower) or dictionary.correction(lower)
        if better and better != lower and better.isascii():
            fixes[word] = better[0].upper() + better[1:] if word[0].isupper() else better
    if not fixes:
        return text
    return WORD.sub(lambda m: fixes.get(m.group(), m.group()), text)


def _british(word: str, dictionary: Any) -> bool:
    """Whether `word` is a British spelling of a word the (American) dictionary knows."""
    forms = [word[: -len(gb)] + us for gb, us in BRITISH if word.endswith(gb)]
    forms += [word.replace(gb, us) for gb, us in BRITISH_INSIDE if gb in word]
    return any(form in dictionary for form in forms)


def _plain(word: str) -> bool:
    """A word as prose writes it: all lower case, or capitalised only at its first letter."""
    return word.islower() or (word[0].isupper() and word[1:].islower())


def _one_of_doubled(match: re.Match[str]) -> str:
    first = match.group(1)
    return match.group(0) if first.lower() in DOUBLE_ALLOWED else first


def _article(match: re.Match[str]) -> str:
    article, word = match.group(1), match.group(2)
    lower = word.lower()
    vowel_sound = (lower[0] in "aeiou" and not lower.startswith(A_BEFORE)) or lower.startswith(
        AN_BEFORE
    )
    if len(word) == 1 or word.isupper():  # "a B", "an FAQ": letters are read by name
        return match.group(0)
    wanted = "an" if vowel_sound else "a"
    if article.lower() == wanted:
        return match.group(0)
    return f"{wanted.capitalize() if article[0].isupper() else wanted} {word}"


# Words an edit may drop or swap freely: the small words grammar fixes are made of.
FUNCTION_WORDS = set(
    """a an the of to in on at for by with from and or but if so as is are was were be been being
    am has have had do does did will would shall should can could may might must of not no it its
    it's they their there they're them we our us you your you're he his him she her hers i me my
    this that these those which who whom whose than then too very""".split()
)
# A phrase written twice in a row ("for you for you"): how a small model stutters.
REPEATED_PHRASE = re.compile(r"\b(\w+ \w+) \1\b", re.IGNORECASE)
EDITS_PER_WORD = 1 / 6  # a correction touches at most this share of the words (at least 2)


def plausible_fix(before: str, after: str) -> bool:
    """Whether `after` reads as a correction of `before` (see the module's docstring)."""
    old, new = before.split(), after.split()
    if not new or REPEATED_PHRASE.search(after) and not REPEATED_PHRASE.search(before):
        return False
    known = {_core(w) for w in old}
    matcher = SequenceMatcher(a=[_core(w) for w in old], b=[_core(w) for w in new], autojunk=False)
    edits = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits += max(i2 - i1, j2 - j1)
        added = [_core(w) for w in new[j1:j2]]
        if any(w and w not in known and not is_word(w) for w in added):
            return False
        for word in (_core(w) for w in old[i1:i2]):
            if word and word not in FUNCTION_WORDS and not any(_similar(word, a) for a in added):
                return False
    return edits <= max(2, int(len(old) * EDITS_PER_WORD))


def _core(word: str) -> str:
    return word.strip('.,;:!?"()[]').lower()


def is_word(word: str) -> bool:
    parts = [p for p in re.split(r"[-']", word) if p]
    return all(p in _dictionary() or p in FUNCTION_WORDS for p in parts)


def _similar(word: str, other: str) -> bool:
    """Two forms of one word, or a spelling fixed: "lives"/"live", "saw"/"seen"."""
    return word[:1] == other[:1] or SequenceMatcher(a=word, b=other).ratio() >= 0.5

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
- homophones and forms that the words around them settle are mended: "on it's" -> "on its",
  "working their for" -> "there", "there own" -> "their own", "is to small" -> "too small",
  "too the" -> "to the", "let me no" -> "let me know", "Were going" -> "We're going", "for you
  help" -> "your help", "when your leaving" -> "you're leaving", "had fell" -> "had fallen",
  "she don't" -> "she doesn't", "the children was" -> "were"; each only where no reading makes
  the original right ("is to close the door", "your wedding", "no longer" are kept);
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
from collections.abc import Callable
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


def _like(word: str, new: str) -> str:
    """`new` with `word`'s leading capital."""
    return new[:1].upper() + new[1:] if word[:1].isupper() else new


def _cased(template: str) -> Callable[[re.Match[str]], str]:
    """A replacement expanding `template` that keeps the match's leading capital."""
    return lambda match: _like(match.group(), match.expand(template))


def _rule(pattern: str, template: str) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    return re.compile(pattern, re.IGNORECASE), _cased(template)


PREPOSITION = r"(on|in|of|for|with|by|from|into|at|to|under|over|about|onto|without)"
# Words that can only be adjectives or adverbs after "to" when a form of "be" comes first: "is to
# small" is "too small" (verbs such as "close" or "slow" are left out: "is to close the door").
TOO_WORDS = """small big large late early hot cold long short far busy tired expensive difficult
hard easy young old loud heavy full tight bright wide narrow strong weak sweet cheap many much
soon tall thin thick high low noisy dangerous complicated good bad""".split()
# After "too" these are never right: "go too the beach" is "go to the beach".
TO_NEXT = """the a an my your his her our their its be see go get make do have take give come
say find know help keep let put buy pay meet bring visit""".split()
# Nouns that end in -ing: "when your wedding" is not "when you're wedding".
ING_NOUNS = """wedding building morning evening meeting ceiling clothing painting setting feeling
booking parking training housing spelling earring writing thing king ring string spring swing
wing sibling darling pudding stuffing icing filling lightning something nothing anything
everything offspring""".split()
# Irregular past tenses written for the participle after have/has/had ("had went").
PARTICIPLES = {
    "went": "gone", "saw": "seen", "came": "come", "wrote": "written", "ate": "eaten",
    "took": "taken", "gave": "given", "fell": "fallen", "drove": "driven", "began": "begun",
    "broke": "broken", "chose": "chosen", "forgot": "forgotten", "froze": "frozen",
    "knew": "known", "rode": "ridden", "rang": "rung", "sang": "sung", "spoke": "spoken",
    "stole": "stolen", "swam": "swum", "threw": "thrown", "wore": "worn", "flew": "flown",
    "grew": "grown", "drew": "drawn", "hid": "hidden", "shook": "shaken", "did": "done",
    "ran": "run", "drank": "drunk", "sank": "sunk", "woke": "woken", "forgave": "forgiven",
}  # fmt: skip
PLURAL_VERBS = {"was": "were", "is": "are", "has": "have"}
# Always-wrong phrases, then sure confusions of homophones and forms, each told by the words
# around it (the rules LanguageTool and Grammarly apply first); what needs the sentence's sense
# is left to the model.
CONFUSIONS = [
    # Phrases that are always wrong (LanguageTool has rules like these).
    _rule(r"\b(could|should|would|must|might) of\b", r"\1 have"),
    _rule(r"\btheir (is|are|was|were)\b", r"there \1"),
    _rule(r"\bits (been|going to|not|a|an|time)\b", r"it's \1"),
    _rule(r"\btheir going to\b", "they're going to"),
    _rule(r"\byour welcome\b", "you're welcome"),
    _rule(rf"\b{PREPOSITION} it's\b", r"\1 its"),  # "on it's favourite cushion"
    _rule(rf"\b{PREPOSITION} they're\b", r"\1 their"),  # "of they're house"
    _rule(r"\b(they're|there) own\b", "their own"),
    # "their" before a pause or a word no noun can be: "working their for ten years".
    _rule(
        r"\btheir(?=\s*[.,;!?]|\s*$| (for|since|until|because|now|again|already|too|yet|when|"
        r"while|if|instead|anymore|tonight|today|tomorrow|yesterday)\b)",
        "there",
    ),
    _rule(
        rf"\b(is|are|was|were|be|been|am|far|much|way|seems?|looks?|feels?|felt) to "
        rf"({'|'.join(TOO_WORDS)})\b",
        r"\1 too \2",
    ),  # fmt: skip
    _rule(rf"\btoo ({'|'.join(TO_NEXT)})\b", r"to \1"),
    _rule(r"\blet (me|us|him|her|them|you) no\b", r"let \1 know"),
    _rule(
        r"\b(do|did|don't|didn't) (you|I|we|they) no\b(?! (longer|more|one|doubt|idea)\b)",
        r"\1 \2 know",
    ),  # fmt: skip
    _rule(r"(^|[.!?]\s+)were (\w+ing)\b", r"\1we're \2"),  # "Were going to be late"
    _rule(
        r"\b(for|thank|about|with) you (help|support|time|email|message|letter|advice|kindness|"
        r"patience|understanding|hospitality|gift|reply|answer|feedback|visit|note)\b",
        r"\1 your \2",
    ),  # fmt: skip
    _rule(r"\b(bring|take|use|pack|choose|make|at|on|in|of|with) you own\b", r"\1 your own"),
    _rule(
        rf"\b(when|if|as|because|while|unless|until|hope|think) your (?!({'|'.join(ING_NOUNS)})\b)"
        r"(\w+ing|ready|sure|right|wrong|welcome|able|late)\b",
        r"\1 you're \3",
    ),  # fmt: skip
    _rule(r"\b(he|she|it) don't\b", r"\1 doesn't"),
    _rule(r"\b(I|you|we|they) doesn't\b", r"\1 don't"),
]
PARTICIPLE = re.compile(
    r"\b(have|has|had|'ve|'d)((?: not| never| ever| already| just| always| finally)?) "
    rf"({'|'.join(PARTICIPLES)})\b",
    re.IGNORECASE,
)
PLURAL = re.compile(r"\b(children|people|men|women|mice|teeth|feet|geese) (was|is|has)\b", re.I)
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
    for pattern, mend in CONFUSIONS:
        text = pattern.sub(mend, text)
    text = PARTICIPLE.sub(lambda m: f"{m[1]}{m[2]} {_like(m[3], PARTICIPLES[m[3].lower()])}", text)
    text = PLURAL.sub(lambda m: f"{m[1]} {_like(m[2], PLURAL_VERBS[m[2].lower()])}", text)
    text = LONE_I.sub("I", text)
    text = CALENDAR.sub(lambda m: m.group().capitalize(), text)
    text = DOUBLED.sub(_one_of_doubled, text)
    text = ARTICLE.sub(_article, text)
    return SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def _contraction(word: str) -> str:
    full = CONTRACTIONS.get(word.lower())
    return word if full is None else _like(word, full)


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
            fixes[word] = _like(word, better)
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

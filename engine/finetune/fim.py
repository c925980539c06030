"""Fill-in-the-middle training data (`--fim RATE`), in the PSM order of Bavarian et al. 2022.

A text document is cut into chunks at line ends (about one training block each, so the prefix,
suffix and middle of a chunk are seen together); each chunk is, with probability RATE, split at
two random character positions and rearranged as

    <|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|>MIDDLE<|endoftext|>

so the model learns to write the middle once it has read both sides, and to end it. Chunks left
as they are stay plain text. The rearrangement is a pure function of (seed, document number), so
a resumed run sees the same data. Only the training split is rearranged: validation and test
perplexity stay comparable with the base model's.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from scribe.engine.finetune.data import Document, Segment

PREFIX, SUFFIX, MIDDLE = "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"
TOKENS = (PREFIX, SUFFIX, MIDDLE)
CHARS_PER_TOKEN = 3  # a chunk of `block` tokens is about this many characters per token


def card_entry(rate: float) -> dict[str, Any]:
    """What a model card records so that the editor bridge can prompt the model with FIM."""
    return {"format": "psm", "prefix": PREFIX, "suffix": SUFFIX, "middle": MIDDLE, "rate": rate}


def chunks(text: str, size: int) -> list[str]:
    """`text` in pieces of about `size` characters, cut after a newline where there is one."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind("\n", start + size // 2, end)
            end = cut + 1 if cut >= 0 else end
        out.append(text[start:end])
        start = end
    return out


def rearrange(text: str, rng: random.Random, eos: str) -> str:
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    prefix, middle, suffix = text[:a], text[a:b], text[b:]
    return f"{PREFIX}{prefix}{SUFFIX}{suffix}{MIDDLE}{middle}{eos}"


def apply(docs: list[Document], rate: float, seed: int, block: int, eos: str) -> list[Document]:
    """The training documents with about `rate` of their chunks rearranged for FIM."""
    if rate <= 0:
        return docs
    size = max(64, block * CHARS_PER_TOKEN)
    out = []
    for i, doc in enumerate(docs):
        if doc.kind != "text":
            out.append(doc)  # prompt/completion and chat examples keep their own structure
            continue
        rng = random.Random(f"fim:{seed}:{i}")
        text = "".join(seg.text for seg in doc.segments)
        pieces = [
            rearrange(chunk, rng, eos) if rng.random() < rate else chunk
            for chunk in chunks(text, size)
        ]
        out.append(replace(doc, segments=[Segment("".join(pieces), True)]))
    return out


def has_tokens(tokenizer: Any) -> bool:
    ids = [tokenizer.convert_tokens_to_ids(t) for t in TOKENS]
    return all(i is not None and i != tokenizer.unk_token_id for i in ids)


def add_tokens(tokenizer: Any, model: Any | None) -> bool:
    """Give a base model's tokenizer the FIM tokens (and the model rows for them) when it lacks
    them; True when anything was added."""
    if has_tokens(tokenizer):
        return False
    tokenizer.add_tokens(list(TOKENS), special_tokens=True)
    if model is not None:
        model.resize_token_embeddings(len(tokenizer))
    return True

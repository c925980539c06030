"""The run's data, in two stages: the documents read and split (`read_data`), then the training
set (`training_set`): tokenized once (cached in the run folder) and packed into blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scribe.engine.errors import InputError
from scribe.engine.finetune import fim
from scribe.engine.finetune.base import Base
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.data import DataFiles, Document, find_files, read_documents
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.settings import DEFAULT_BLOCK
from scribe.engine.finetune.splits import SPLITS, Split, split_documents
from scribe.engine.finetune.tokens import (
    CACHE_META,
    Blocks,
    TokenSplit,
    cache_key,
    load_cache,
    pack,
    save_cache,
    tokenize_split,
)
from scribe.engine.prompting.chat_format import ChatFormat

EXAMPLE_CHARS = 800


@dataclass(frozen=True)
class Documents:
    """The data as read: its files, the chat format transcripts render with, the split."""

    files: DataFiles
    chat: ChatFormat
    split: Split


@dataclass(frozen=True)
class TrainingSet:
    """The data as the model sees it: each split packed into blocks, and the data summary."""

    files: DataFiles
    chat: ChatFormat
    split: Split  # with --fim, the training documents rearranged
    block_size: int
    train: Blocks
    val: Blocks
    test: Blocks
    summary: dict[str, Any]  # summarize's counts plus the blocks'; the card's "data"

    @property
    def uses_chat(self) -> bool:
        """Whether any document is a chat transcript (the card then records the chat format)."""
        return any(doc.kind == "chat" for part in self.split.parts().values() for doc in part)


def read_data(ctx: RunContext) -> Documents:
    """The --data files read into documents and split into train, validation and test."""
    s = ctx.settings
    ctx.emit(Stage("reading data"))
    files = find_files(s.data, exclude=ctx.out)
    chat = ChatFormat.from_template(s.chat_template)
    split = split_documents(read_documents(files, chat), s.val_fraction, s.test_fraction, s.seed)
    return Documents(files, chat, split)


def block_size(ctx: RunContext, n_positions: int) -> int:
    """--block-size, else DEFAULT_BLOCK or the model's context where that is shorter."""
    block = ctx.settings.block_size or min(n_positions, DEFAULT_BLOCK)
    if block > n_positions:
        raise InputError(f"--block-size {block} is more than the model's {n_positions} positions")
    return block


def training_set(ctx: RunContext, docs: Documents, base: Base) -> TrainingSet:
    """The documents (rearranged for --fim) tokenized with the base's tokenizer and packed."""
    s = ctx.settings
    block = block_size(ctx, base.n_positions)
    split = docs.split
    if s.fim:
        eot = base.tokenizer.eos_token
        split = Split(fim.apply(split.train, s.fim, s.seed, block, eot), split.val, split.test)
    tokens, summary = tokenized(ctx, docs.files, split, base.tokenizer, docs.chat)
    blocks, summary = packed(tokens, block, base.tokenizer.eos_token_id, summary)
    train, val, test = (blocks[name] for name in SPLITS)
    return TrainingSet(docs.files, docs.chat, split, block, train, val, test, summary)


def tokenized(
    ctx: RunContext, files: DataFiles, split: Split, tokenizer: Any, chat: ChatFormat
) -> tuple[dict[str, TokenSplit], dict[str, Any]]:
    """Each split's token ids and the data summary: from the run folder's cache when it was
    made from these very files, tokenizer and settings; a resume refuses anything else."""
    s = ctx.settings
    extra = {
        "seed": s.seed,
        "val": s.val_fraction,
        "test": s.test_fraction,
        "chat": chat.as_dict(),
        "vocab": len(tokenizer),
        "fim": s.fim,
        "block": s.block_size,
    }
    tok_file = Path(tokenizer.name_or_path) / "tokenizer.json" if tokenizer.name_or_path else None
    key = cache_key(files.files, tok_file, extra)

    def make() -> tuple[dict[str, TokenSplit], dict[str, Any]]:
        cached = load_cache(ctx.run_dir, key) if ctx.writes else None
        if cached is not None:
            return cached
        if s.resume and (ctx.run_dir / CACHE_META).exists():
            raise InputError(
                "the data files changed since this run started, so it cannot resume exactly; "
                "restore them or start again with --overwrite"
            )
        ctx.emit(Stage("tokenizing"))
        parts = tokenize_split(split, tokenizer)
        summary = summarize(files, split, parts)
        if ctx.writes:
            save_cache(ctx.run_dir, key, parts, summary)
        return parts, summary

    if not ctx.writes:
        return make()
    made = ctx.on_main(make)
    if made is None:  # another rank: rank 0 has just written the cache
        made = load_cache(ctx.run_dir, key)
        assert made is not None
    return made


def packed(
    tokens: dict[str, TokenSplit], block: int, eos: int | None, summary: dict[str, Any]
) -> tuple[dict[str, Blocks], dict[str, Any]]:
    """Each split cut into blocks of `block` tokens, and `summary` with the blocks' counts."""
    if eos is None:
        raise InputError("the base model's tokenizer has no end-of-text token; pick another base")
    blocks = {name: pack(tokens[name], block, eos, keep_tail=name != "train") for name in SPLITS}
    if len(blocks["train"]) == 0:
        raise InputError(
            f"the training split has {int(len(tokens['train'].ids))} tokens, less than one "
            f"block of {block}; add data or lower --block-size"
        )
    counted = {
        **summary,
        "block_size": block,
        "blocks": {name: len(b) for name, b in blocks.items()},
        "truncated_examples": sum(b.truncated for b in blocks.values()),
    }
    return blocks, counted


def summarize(files: DataFiles, split: Split, parts: dict[str, TokenSplit]) -> dict[str, Any]:
    """The data summary the CLI, the card and the report show: files, documents, tokens."""
    per_file: dict[str, int] = {}
    for docs in split.parts().values():
        for doc in docs:
            path = doc.source.rsplit(":", 1)[0] if doc.kind != "text" else doc.source
            per_file[path] = per_file.get(path, 0) + 1
    return {
        "files": [
            {"path": str(path), "format": fmt, "documents": per_file.get(str(path), 0)}
            for path, fmt in files.files
        ],
        "skipped_files": len(files.skipped),
        "kinds": sorted({doc.kind for docs in split.parts().values() for doc in docs}),
        "documents": {name: len(docs) for name, docs in split.parts().items()},
        "tokens": {name: int(len(p.ids)) for name, p in parts.items()},
        "trained_tokens": {name: int(p.mask.sum()) for name, p in parts.items()},
    }


def example(split: Split, tokenizer: Any) -> str:
    """One training document as the model sees it, for --dry-run."""
    docs: list[Document] = split.train or split.val or split.test
    if not docs:
        return ""
    # Prefer a document with a masked part: it shows what the loss skips.
    doc = next((d for d in docs if any(not s.trainable for s in d.segments)), docs[0])
    text = doc.rendered(eos_text=tokenizer.eos_token or "")
    if len(text) > EXAMPLE_CHARS:
        text = text[:EXAMPLE_CHARS] + " …"
    return f"{doc.source}:\n{text}"

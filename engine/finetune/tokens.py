"""Documents to token ids (once, cached in the run folder) and token ids to training blocks.

Text documents are packed as one stream, cut into blocks that overlap by one token so every
token (but the very first) is predicted exactly once. Prompt/completion and chat documents are
packed whole into blocks (first fit in order) and padded, so a completion never loses its prompt.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scribe.engine.files.derived import fingerprint
from scribe.engine.finetune.data import Document
from scribe.engine.finetune.splits import SPLITS, Split

CACHE_FILE = "tokens.safetensors"
CACHE_META = "tokens.json"


@dataclass
class TokenSplit:
    ids: torch.Tensor  # int32, all documents' tokens back to back
    mask: torch.Tensor  # bool, True where the loss is taken
    offsets: torch.Tensor  # int64, document i is ids[offsets[i]:offsets[i+1]]
    stream: torch.Tensor  # bool per document: packed as a stream (text) or whole (examples)

    def document(self, i: int) -> tuple[list[int], list[bool]]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.ids[a:b].tolist(), self.mask[a:b].tolist()


@dataclass
class Blocks:
    ids: torch.Tensor  # [N, block] int64
    mask: torch.Tensor  # [N, block] bool: position t's token is a target (predicted from < t)
    truncated: int = 0  # examples longer than a block, cut to their last block_size tokens

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def targets(self) -> int:
        return int(self.mask[:, 1:].sum())


def tokenize(docs: list[Document], tokenizer: Any) -> TokenSplit:
    """One batched (parallel, in Rust) encode of every segment of every document."""
    eos = tokenizer.eos_token_id
    texts = [seg.text for doc in docs for seg in doc.segments]
    encoded = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    ids: list[int] = []
    mask: list[bool] = []
    offsets = [0]
    k = 0
    for doc in docs:
        for seg in doc.segments:
            seg_ids = encoded[k].ids
            k += 1
            ids += seg_ids
            mask += [seg.trainable] * len(seg_ids)
        if doc.eos:
            ids.append(eos)
            mask.append(True)
        offsets.append(len(ids))
    return TokenSplit(
        ids=torch.tensor(ids, dtype=torch.int32),
        mask=torch.tensor(mask, dtype=torch.bool),
        offsets=torch.tensor(offsets, dtype=torch.int64),
        stream=torch.tensor([doc.kind == "text" for doc in docs], dtype=torch.bool),
    )


def tokenize_split(split: Split, tokenizer: Any) -> dict[str, TokenSplit]:
    return {name: tokenize(docs, tokenizer) for name, docs in split.parts().items()}


def cache_key(
    files: list[tuple[Path, str]], tokenizer_file: Path | None, extra: dict[str, Any]
) -> str:
    """Changes whenever a data file, the tokenizer or the split settings change. The tokenizer
    counts by content: each run stages a fresh copy of it, so its time stamp always changes."""
    tokenizer = ""
    if tokenizer_file is not None and tokenizer_file.exists():
        tokenizer = hashlib.sha256(tokenizer_file.read_bytes()).hexdigest()
    version = json.dumps(
        {"formats": [fmt for _, fmt in files], "tokenizer": tokenizer, "extra": extra},
        sort_keys=True,
    )
    return fingerprint([path for path, _ in files], version)


def save_cache(
    run_dir: Path, key: str, splits: dict[str, TokenSplit], summary: dict[str, Any]
) -> None:
    from safetensors.torch import save_file

    from scribe.engine.files.atomic import atomic_path

    tensors = {}
    for name, part in splits.items():
        tensors[f"{name}.ids"] = part.ids
        tensors[f"{name}.mask"] = part.mask.to(torch.uint8)
        tensors[f"{name}.offsets"] = part.offsets
        tensors[f"{name}.stream"] = part.stream.to(torch.uint8)
    with atomic_path(run_dir / CACHE_FILE) as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(run_dir / CACHE_META) as tmp:
        tmp.write_text(json.dumps({"key": key, "summary": summary}), encoding="utf-8")


def load_cache(run_dir: Path, key: str) -> tuple[dict[str, TokenSplit], dict[str, Any]] | None:
    """The cached token ids, if they were made from the same files, tokenizer and settings."""
    meta_file, data_file = run_dir / CACHE_META, run_dir / CACHE_FILE
    if not meta_file.exists() or not data_file.exists():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if meta.get("key") != key:
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(data_file))
    splits = {
        name: TokenSplit(
            ids=tensors[f"{name}.ids"],
            mask=tensors[f"{name}.mask"].bool(),
            offsets=tensors[f"{name}.offsets"],
            stream=tensors[f"{name}.stream"].bool(),
        )
        for name in SPLITS
    }
    return splits, meta["summary"]


def pack(part: TokenSplit, block: int, pad_id: int, keep_tail: bool) -> Blocks:
    """Training blocks of `block` tokens. `keep_tail` (evaluation) keeps a last, padded partial
    block of the stream; training drops it, so every training block is full."""
    stream_docs = part.stream.nonzero().flatten().tolist()
    example_docs = (~part.stream).nonzero().flatten().tolist()
    rows_ids: list[torch.Tensor] = []
    rows_mask: list[torch.Tensor] = []
    if stream_docs:
        ids = torch.cat([part.ids[part.offsets[i] : part.offsets[i + 1]] for i in stream_docs])
        mask = torch.cat([part.mask[part.offsets[i] : part.offsets[i + 1]] for i in stream_docs])
        stride = block - 1
        if len(ids) >= block:
            rows_ids.append(ids.unfold(0, block, stride).to(torch.int64))
            rows_mask.append(mask.unfold(0, block, stride))
            covered = (len(ids) - block) // stride * stride + block
        else:
            covered = 0
        if keep_tail and covered < len(ids):
            start = max(covered - 1, 0)
            tail_ids, tail_mask = ids[start:].to(torch.int64), mask[start:].clone()
            if start > 0:
                tail_mask[0] = False  # predicted already by the previous block
            rows_ids.append(_pad(tail_ids, block, pad_id)[None])
            rows_mask.append(_pad(tail_mask, block, False)[None])
    truncated = 0
    if example_docs:
        ex_ids, ex_mask, truncated = _pack_examples(part, example_docs, block, pad_id)
        rows_ids.append(ex_ids)
        rows_mask.append(ex_mask)
    if not rows_ids:
        return Blocks(
            torch.zeros(0, block, dtype=torch.int64), torch.zeros(0, block, dtype=torch.bool)
        )
    return Blocks(torch.cat(rows_ids), torch.cat(rows_mask), truncated)


def _pad(values: torch.Tensor, length: int, fill: Any) -> torch.Tensor:
    out = torch.full((length,), fill, dtype=values.dtype)
    out[: len(values)] = values
    return out


def _pack_examples(
    part: TokenSplit, docs: list[int], block: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    rows: list[list[tuple[int, int]]] = []  # per block: (start, end) slices of part.ids
    used = block  # forces a first block
    truncated = 0
    for i in docs:
        a, b = int(part.offsets[i]), int(part.offsets[i + 1])
        if b - a > block:
            a, truncated = b - block, truncated + 1
        if used + (b - a) > block:
            rows.append([])
            used = 0
        rows[-1].append((a, b))
        used += b - a
    ids = torch.full((len(rows), block), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(rows), block), dtype=torch.bool)
    for r, slices in enumerate(rows):
        at = 0
        for a, b in slices:
            ids[r, at : at + b - a] = part.ids[a:b]
            mask[r, at : at + b - a] = part.mask[a:b]
            at += b - a
    return ids, mask, truncated

"""A GPT-2 tokenizer as GGUF's vocabulary: tokens, their types and the BPE merges, checked
against the model's embedding rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from scribe.engine.errors import ModelError
from scribe.engine.runtime import models


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]


def tokenizer_json(loaded: models.LoadedModel) -> dict[str, Any]:
    """The tokenizer as tokenizer.json holds it (also for a vocab.json + merges.txt folder,
    which transformers converts)."""
    return json.loads(loaded.tokenizer.backend_tokenizer.to_str())


def read_vocab(tokenizer: Mapping[str, Any], rows: int, path: Path) -> Vocab:
    """llama.cpp's "gpt2" vocabulary: one token per embedding row (rows no token uses are
    [PADn], unused, as the converter writes them), added special tokens as control tokens."""
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE" or not _byte_level(tokenizer.get("pre_tokenizer")):
        raise ModelError(
            f"{path}: the tokenizer is not a byte-level BPE, which llama.cpp's gpt2 tokenizer "
            "needs; export a model with a GPT-2 style tokenizer"
        )
    by_id = {int(i): str(token) for token, i in model.get("vocab", {}).items()}
    added = {int(t["id"]): t for t in tokenizer.get("added_tokens", [])}
    by_id.update({i: str(t["content"]) for i, t in added.items()})
    if by_id and max(by_id) >= rows:
        raise ModelError(
            f"{path}: token id {max(by_id)} is past the model's {rows} embeddings; the "
            "tokenizer belongs to another model"
        )
    tokens, types = [], []
    for i in range(rows):
        token = by_id.get(i)
        tokens.append(f"[PAD{i}]" if token is None else token)
        types.append(_token_type(token, added.get(i)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return Vocab(tokens, types, merges)


def _byte_level(pre_tokenizer: Any) -> bool:
    if not isinstance(pre_tokenizer, dict):
        return False
    if pre_tokenizer.get("type") == "ByteLevel":
        return True
    return any(_byte_level(p) for p in pre_tokenizer.get("pretokenizers") or [])


def _token_type(token: str | None, added: Mapping[str, Any] | None) -> int:
    if token is None:
        return gguf.TokenType.UNUSED
    if added is None:
        return gguf.TokenType.NORMAL
    # <|endoftext|>, <|fim_prefix|>...: matched whole, never split or merged by llama.cpp.
    looks_special = token.startswith("<|") and token.endswith("|>")
    special = added.get("special") or looks_special
    return gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED

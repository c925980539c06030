"""`--from-scratch`: a new small GPT-2-shaped model and a byte-level BPE tokenizer trained on the
training split (the recipe of the embedded default model)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from scribe.engine.errors import InputError
from scribe.engine.finetune.data import Document

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_embd: int
    vocab_size: int
    n_positions: int = 1024

    @property
    def n_head(self) -> int:
        return max(1, self.n_embd // 64)

    @property
    def parameters(self) -> int:
        """About how many weights the model has (tied embeddings): blocks, embeddings."""
        blocks = 12 * self.n_layer * self.n_embd**2
        return blocks + (self.vocab_size + self.n_positions) * self.n_embd

    def describe(self) -> dict[str, int]:
        return {**asdict(self), "n_head": self.n_head}


# Named shapes, smallest first. Parameters are for the given vocabulary, tied embeddings.
SHAPES: dict[str, Shape] = {
    "tiny": Shape(n_layer=2, n_embd=128, vocab_size=4096, n_positions=256),  # ~1M, for trials
    "mini": Shape(n_layer=4, n_embd=256, vocab_size=8192),  # ~5.5M
    "small": Shape(n_layer=6, n_embd=384, vocab_size=12288),  # ~15M: the embedded default's size
    "medium": Shape(n_layer=8, n_embd=512, vocab_size=16384),  # ~34M
    "gpt2": Shape(n_layer=12, n_embd=768, vocab_size=16384),  # GPT-2 124M's body, smaller vocab
}
CUSTOM = re.compile(r"^(\d+)x(\d+)$")  # LAYERSxWIDTH, e.g. 6x384


def parse_shape(name: str, vocab_size: int | None, n_positions: int | None) -> Shape:
    if name in SHAPES:
        shape = SHAPES[name]
    elif match := CUSTOM.match(name):
        layers, width = int(match[1]), int(match[2])
        if layers < 1 or width < 8 or width % 8:
            raise InputError(
                f"--from-scratch {name}: need at least 1 layer and a width divisible by 8"
            )
        shape = Shape(n_layer=layers, n_embd=width, vocab_size=12288)
    else:
        names = ", ".join(SHAPES)
        raise InputError(
            f"--from-scratch: unknown shape '{name}'; use one of {names}, or LAYERSxWIDTH"
        )
    if vocab_size is not None:
        if vocab_size < 300:
            raise InputError("--vocab-size must be at least 300 (256 bytes plus merges)")
        shape = Shape(shape.n_layer, shape.n_embd, vocab_size, shape.n_positions)
    if n_positions is not None:
        shape = Shape(shape.n_layer, shape.n_embd, shape.vocab_size, n_positions)
    return shape


def _texts(docs: list[Document]) -> Iterator[str]:
    for doc in docs:
        yield "".join(seg.text for seg in doc.segments)


def train_tokenizer(
    docs: list[Document], vocab_size: int, n_positions: int, extra_special: tuple[str, ...] = ()
) -> Any:
    """A GPT-2-style byte-level BPE (no unknown tokens, exact round trip) trained on `docs`;
    `extra_special` (the FIM tokens) become single special tokens after the end-of-text one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, *extra_special],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_texts(docs), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        additional_special_tokens=list(extra_special),
        eos_token=EOS,
        bos_token=EOS,
        unk_token=EOS,
        model_max_length=n_positions,
        clean_up_tokenization_spaces=False,
    )


def new_model(shape: Shape, tokenizer: Any, dropout: float, seed: int) -> Any:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=shape.n_positions,
        n_embd=shape.n_embd,
        n_layer=shape.n_layer,
        n_head=shape.n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)

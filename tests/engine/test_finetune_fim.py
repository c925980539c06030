"""`--fim RATE`: training chunks rearranged prefix/suffix/middle, FIM tokens in the tokenizer (new
or added to a base model's), and the card declaring the format the model speaks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from scribe.engine.finetune import FinetuneSettings, fim, run_finetune
from scribe.engine.finetune.data import Document, Segment
from tests.factory import scratch_settings, write_text

EOS = "<|endoftext|>"


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def undo(piece: str) -> str:
    """The original text of one rearranged chunk."""
    body = piece.removeprefix(fim.PREFIX).removesuffix(EOS)
    prefix, rest = body.split(fim.SUFFIX)
    suffix, middle = rest.split(fim.MIDDLE)
    return prefix + middle + suffix


def doc(text: str) -> Document:
    return Document("a.txt", "text", [Segment(text, True)], eos=True)


def test_every_chunk_rearranged_at_rate_one_and_restorable() -> None:
    text = "".join(f"line {i} of the document, with some words.\n" for i in range(200))
    [out] = fim.apply([doc(text)], rate=1.0, seed=0, block=32, eos=EOS)
    rearranged = out.segments[0].text
    pieces = [p + EOS for p in rearranged.split(EOS) if p]
    assert len(pieces) > 10  # cut into chunks of about a block
    assert all(p.startswith(fim.PREFIX) and p.count(fim.MIDDLE) == 1 for p in pieces)
    assert "".join(undo(p) for p in pieces) == text
    # Chunks end at line ends, so a middle never starts inside another chunk's line.
    assert all(undo(p).endswith("\n") for p in pieces[:-1])


def test_rate_is_about_the_fraction_of_chunks_and_the_result_is_seeded() -> None:
    text = "word " * 20_000
    docs = [doc(text)]
    a = fim.apply(docs, rate=0.5, seed=1, block=32, eos=EOS)[0].segments[0].text
    b = fim.apply(docs, rate=0.5, seed=1, block=32, eos=EOS)[0].segments[0].text
    c = fim.apply(docs, rate=0.5, seed=2, block=32, eos=EOS)[0].segments[0].text
    assert a == b and a != c
    chunks = len(fim.chunks(text, 32 * fim.CHARS_PER_TOKEN))
    assert 0.35 < a.count(fim.PREFIX) / chunks < 0.65
    assert fim.apply(docs, rate=0.0, seed=1, block=32, eos=EOS) is docs


def test_pairs_and_chats_are_left_alone() -> None:
    pair = Document("p.jsonl:1", "pair", [Segment("Q", False), Segment("A", True)], eos=True)
    assert fim.apply([pair], rate=1.0, seed=0, block=32, eos=EOS) == [pair]


def test_rearrange_splits_at_two_points() -> None:
    rng = random.Random(0)
    for _ in range(50):
        text = "abcdefghij" * rng.randint(0, 5)
        assert undo(fim.rearrange(text, rng, EOS)) == text


@pytest.mark.slow
def test_from_scratch_with_fim_has_single_token_markers_and_a_card(tmp_path: Path) -> None:
    data = write_text(tmp_path, paragraphs=120)
    result = run_finetune(scratch_settings(data, fim=0.5, max_steps=10))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(result.out)
    ids = tok(f"{fim.PREFIX}a{fim.SUFFIX}b{fim.MIDDLE}c")["input_ids"]
    specials = [tok.convert_tokens_to_ids(t) for t in fim.TOKENS]
    assert all(i in ids for i in specials) and len(set(specials)) == 3
    card = json.loads((result.out / "scribe.json").read_text())
    assert card["fim"] == fim.card_entry(0.5)


@pytest.mark.slow
def test_fim_on_a_base_model_adds_its_tokens(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=80)
    before = json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
    settings = FinetuneSettings(
        data=[str(data)],
        out=str(tmp_path / "fimmed"),
        model=str(tiny_model_dir),
        block_size=32,
        batch_size=4,
        max_steps=4,
        threads=1,
        sample_every=0,
        patience=0,
        fim=0.5,
        bf16=False,
    )
    result = run_finetune(settings)
    config = json.loads((result.out / "config.json").read_text())
    assert config["vocab_size"] >= before + 3
    card = json.loads((result.out / "scribe.json").read_text())
    assert card["fim"]["prefix"] == fim.PREFIX


def test_fim_rate_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    from scribe.engine.errors import InputError

    with pytest.raises(InputError, match="--fim"):
        scratch_settings(tmp_path, fim=1.5).check()


def test_fim_with_an_adapter_on_a_base_without_the_tokens_is_refused(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from scribe.engine.errors import InputError

    data = write_text(tmp_path, paragraphs=40)
    settings = FinetuneSettings(
        data=[str(data)],
        out=str(tmp_path / "lora-fim"),
        model=str(tiny_model_dir),
        method="lora",
        fim=0.5,
        max_steps=2,
        block_size=32,
        threads=1,
        bf16=False,
    )
    with pytest.raises(InputError, match="adapter cannot carry new token rows"):
        run_finetune(settings)

"""The decode loop: equality with transformers' greedy generate(), sampling options, streaming
deltas, stop sequences, cancellation and prefix reuse."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.models import load
from scribe.engine.runtime.options import GenerationOptions

# The loop guard is off: these tests compare token for token with transformers, which has none.
GREEDY = GenerationOptions(temperature=0, max_new_tokens=40, dry_multiplier=0)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Generator:
    return Generator(load(str(tiny_model_dir)))


@pytest.fixture(scope="module")
def vocab(gpt2_vocab_model_dir: Path) -> Generator:
    return Generator(load(str(gpt2_vocab_model_dir)))


def reference_greedy(gen: Generator, prompt: str, n: int) -> list[int]:
    ids = torch.tensor([gen.encode(prompt)])
    out = gen.model.generate(
        ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("which", ["tiny", "vocab"])
@pytest.mark.parametrize("prompt", ["The quick brown fox", "It was a bright cold day in April"])
def test_greedy_equals_transformers_generate(
    request: pytest.FixtureRequest, which: str, prompt: str
) -> None:
    gen = request.getfixturevalue(which)
    expected = reference_greedy(gen, prompt, 40)
    eos = gen.loaded.eos_token_id
    if eos in expected:
        expected = expected[: expected.index(eos)]
    stream = gen.stream(prompt, GREEDY)
    assert stream.text() == gen.decode(expected)
    assert stream.stats.new_tokens == len(expected)


def test_same_seed_same_text_and_different_seeds_differ(tiny: Generator) -> None:
    def sample(seed: int) -> str:
        opts = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=30, seed=seed)
        return tiny.complete_text("A writer needs", opts)

    assert sample(1) == sample(1)
    assert len({sample(s) for s in range(4)}) > 1


def test_top_k_one_is_greedy(tiny: Generator) -> None:
    opts = GenerationOptions(temperature=1.5, top_k=1, max_new_tokens=20, seed=3, dry_multiplier=0)
    assert tiny.complete_text("She opened", opts) == tiny.complete_text(
        "She opened", GREEDY.updated(max_new_tokens=20)
    )


def test_repetition_penalty_matches_transformers(vocab: Generator) -> None:
    prompt = "The quick brown fox"
    ids = torch.tensor([vocab.encode(prompt)])
    out = vocab.model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=25,
        repetition_penalty=1.3,
    )
    opts = GREEDY.updated(max_new_tokens=25, repetition_penalty=1.3)
    assert vocab.complete_text(prompt, opts) == vocab.decode(out[0, ids.shape[1] :].tolist())


def test_deltas_are_whole_characters(vocab: Generator) -> None:
    # Byte-level tokens split multi-byte characters; no delta may carry half of one.
    opts = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=60, seed=7)
    deltas = list(vocab.stream("Über café 🙂 日本語", opts))
    assert deltas
    for delta in deltas:
        assert delta.encode("utf-8").decode("utf-8") == delta
    assert "".join(deltas) == vocab.complete_text("Über café 🙂 日本語", opts)


@pytest.mark.parametrize("start", [0, 5, 11])
def test_stop_sequence_is_never_leaked(vocab: Generator, start: int) -> None:
    full = vocab.complete_text("The quick brown fox", GREEDY)
    stop = full[start : start + 4]
    stream = vocab.stream("The quick brown fox", GREEDY.updated(stop=(stop, "never there")))
    text = "".join(list(stream))
    assert text == full[: full.index(stop)]
    assert stop not in text
    assert stream.finish_reason == "stop"


def test_cancel_event_stops_after_the_current_token(tiny: Generator) -> None:
    cancel = threading.Event()
    opts = GenerationOptions(temperature=1.0, max_new_tokens=100, seed=1)
    at_cancel = None
    stream = tiny.stream("A writer", opts, cancel=cancel)
    for _delta in stream:
        if at_cancel is None:
            at_cancel = stream.stats.new_tokens
            cancel.set()
    assert stream.finish_reason == "cancelled"
    assert stream.stats.new_tokens == at_cancel


def test_closing_the_generator_releases_the_model(tiny: Generator) -> None:
    stream = tiny.stream("A writer", GenerationOptions(max_new_tokens=50, seed=1))
    next(stream)
    stream.close()
    assert tiny.complete_text("A writer", GREEDY.updated(max_new_tokens=3)) is not None


def test_prefix_reuse_feeds_only_new_tokens_and_changes_nothing(
    gpt2_vocab_model_dir: Path,
) -> None:
    base = "It was a bright cold day in April, and the clocks were striking thirteen. " * 6
    edited = base + "Winston Smith hurried home"
    warm = Generator(load(str(gpt2_vocab_model_dir)))
    warm.complete_text(base, GREEDY)
    stream = warm.stream(edited, GREEDY)
    reused_text = stream.text()
    assert stream.stats.reused_tokens >= len(warm.encode(base)) - 1
    cold = Generator(load(str(gpt2_vocab_model_dir))).stream(edited, GREEDY)
    assert cold.text() == reused_text
    assert cold.stats.reused_tokens == 0
    # An edit in the middle reuses only the part before it and still matches a fresh run.
    middle = base.replace("clocks", "bells", 1) + "Winston"
    stream = warm.stream(middle, GREEDY)
    reused_text = stream.text()
    assert 0 < stream.stats.reused_tokens < len(warm.encode(base)) // 2
    fresh = Generator(load(str(gpt2_vocab_model_dir)))
    assert fresh.complete_text(middle, GREEDY) == reused_text


def test_prompt_longer_than_the_window_keeps_its_tail(tiny: Generator) -> None:
    words = " ".join(f"w{i}" for i in range(2000))
    ids = tiny.prompt_ids(words, max_new_tokens=30)
    assert len(ids) == tiny.n_positions - 30
    assert tiny.decode(ids).endswith("w1999")
    stream = tiny.stream(words, GREEDY.updated(max_new_tokens=30))
    assert isinstance(stream.text(), str)
    assert stream.stats.prompt_tokens + stream.stats.new_tokens <= tiny.n_positions


def test_max_tokens_beyond_the_window_is_clamped(tiny: Generator) -> None:
    stream = tiny.stream("Hello", GenerationOptions(temperature=0, max_new_tokens=10_000))
    stream.text()
    assert stream.stats.prompt_tokens + stream.stats.new_tokens <= tiny.n_positions

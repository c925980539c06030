"""Token healing: blanks cut off the end of a prompt are spelled out by the reply's first tokens,
in the tokenization the model prefers, and left out of the streamed text."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine.runtime import generation
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.healing import BlankTokens, HealedStart, split_trailing_blanks
from scribe.engine.runtime.models import load
from scribe.engine.runtime.options import GenerationOptions
from tests import factory

SAMPLED = GenerationOptions(temperature=1.5, top_k=0, top_p=1.0, min_p=0, max_new_tokens=12)


@pytest.fixture(scope="module")
def vocab(gpt2_vocab_model_dir: Path) -> Generator:
    return Generator(load(str(gpt2_vocab_model_dir)))


def test_trailing_blanks_include_line_breaks_and_indentation() -> None:
    assert split_trailing_blanks("def f(path):\n    ") == ("def f(path):", "\n    ")
    assert split_trailing_blanks("Dear Ms. Patel,\n\n") == ("Dear Ms. Patel,", "\n\n")
    assert split_trailing_blanks("no blanks") == ("no blanks", "")
    assert split_trailing_blanks("  \n ") == ("", "  \n ")
    assert split_trailing_blanks("x" + " " * 100) == ("x" + " " * 36, " " * 64)  # at most 64


def test_only_tokens_that_continue_the_blanks_are_allowed() -> None:
    tokenizer = factory.gpt2_tokenizer()
    tokens = BlankTokens(tokenizer.batch_decode([[i] for i in range(len(tokenizer))]))
    start = HealedStart("\n    ", tokens)
    allowed = {tokens.texts[i] for i in start.allowed()}
    assert "\n" in allowed and " return" not in allowed and "return" not in allowed
    assert all(t.startswith("\n    ") or "\n    ".startswith(t) for t in allowed)
    start.chose("\n   ")  # GPT-2 glues three of the four spaces to the line break
    assert start.active and start.left == " "
    assert " return" in {tokens.texts[i] for i in start.allowed()}
    start.chose(" return")
    assert not start.active
    assert start.visible("\n   ") + start.visible(" return") == "return"


def test_the_reply_spells_out_the_blanks_and_streams_what_follows(
    vocab: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[int] = []
    choose = generation.choose_token

    def spy(*args: object, **kwargs: object) -> int:
        token = choose(*args, **kwargs)
        chosen.append(token)
        return token

    monkeypatch.setattr(generation, "choose_token", spy)
    blanks = "\n    "
    for seed in range(4):
        chosen.clear()
        reply = vocab.stream("def f(x):" + blanks, SAMPLED.updated(seed=seed), heal=True).text()
        written = vocab.decode(chosen)
        # A random model left alone almost never starts a reply with a line break and 4 spaces.
        assert written.startswith(blanks), (seed, written)
        assert reply == written[len(blanks) :]


def test_without_blanks_the_reply_is_unconstrained(
    vocab: Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts = {vocab.stream("def f(x):", SAMPLED.updated(seed=s)).text()[:1] for s in range(6)}
    assert starts != {"\n"}  # the control: the constraint above is what spells the blanks

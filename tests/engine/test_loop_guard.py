"""The loop guard (DRY), min_p and the windowed repetition penalty: what they penalise, that
quoting the prompt is free, that they stop a real greedy loop, and that every door can set them
(flag, template, /set, config.toml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scribe.engine import paths
from scribe.engine.errors import ConfigError, InputError
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.models import load
from scribe.engine.runtime.options import GenerationOptions, configured_options, parse_option
from scribe.engine.runtime.sampling import choose_token, dry_penalties
from tests.tui.cli_run import scribe

GUARD = GenerationOptions(dry_multiplier=1.0, dry_base=2.0, dry_allowed_length=2)
NOTHING_SEEN = np.empty(0, dtype=np.int64)


def test_dry_penalises_the_token_that_would_extend_a_repeat() -> None:
    # Generated: 5 6 7 8 5 6 7 -> writing 8 next repeats "5 6 7 8" (a match of 3 before it).
    penalties = dry_penalties([5, 6, 7, 8, 5, 6, 7], 0, GUARD)
    assert penalties == {8: 1.0 * 2.0 ** (3 - 2)}
    # A match shorter than the allowed length costs nothing.
    assert dry_penalties([5, 6, 9, 6], 0, GUARD) == {}


def test_quoting_the_prompt_is_never_penalised() -> None:
    # Prompt 5 6 7 8, reply so far 5 6 7: the reply copies the prompt, as fix-grammar must.
    assert dry_penalties([5, 6, 7, 8, 5, 6, 7], 4, GUARD) == {}
    logits = np.zeros(10, dtype=np.float32)
    logits[8] = 0.5  # the copy's next token is the favourite
    seen = np.array([5, 6, 7, 8, 5, 6, 7])
    greedy = GUARD.updated(temperature=0)
    assert choose_token(logits, greedy, seen, None, first_generated=4) == 8
    assert choose_token(logits, greedy, seen, None, first_generated=0) != 8  # its own loop


def test_min_p_drops_the_unlikely_tail() -> None:
    logits = np.zeros(1000, dtype=np.float32)
    logits[0], logits[1] = 5.0, 4.9  # the tail holds most of the mass, each token tiny
    opts = GenerationOptions(temperature=1.0, top_k=0, top_p=1.0, min_p=0, dry_multiplier=0)
    none = [choose_token(logits, opts, NOTHING_SEEN, _gen(s)) for s in range(50)]
    assert any(t > 1 for t in none)
    strict = opts.updated(min_p=0.5)
    kept = {choose_token(logits, strict, NOTHING_SEEN, _gen(s)) for s in range(50)}
    assert kept == {0, 1}


def test_repetition_penalty_only_looks_back_its_window() -> None:
    logits = np.full(10, 1.0, dtype=np.float32)
    logits[3] = 1.5
    seen = np.array([3] + [1] * 20)  # 3 is 21 tokens back
    opts = GenerationOptions(temperature=0, repetition_penalty=2.0, dry_multiplier=0)
    assert choose_token(logits, opts.updated(repetition_window=0), seen, None) != 3
    assert choose_token(logits, opts.updated(repetition_window=8), seen, None) == 3


def _gen(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _longest_run(ids: list[int]) -> int:
    best = run = 1
    for a, b in zip(ids, ids[1:], strict=False):
        run = run + 1 if a == b else 1
        best = max(best, run)
    return best


def test_the_guard_breaks_a_real_greedy_loop(gpt2_vocab_model_dir: Path) -> None:
    gen = Generator(load(str(gpt2_vocab_model_dir)))
    greedy = GenerationOptions(temperature=0, max_new_tokens=60)
    looping = gen.encode(gen.complete_text("The quick brown fox", greedy.updated(dry_multiplier=0)))
    guarded = gen.encode(gen.complete_text("The quick brown fox", greedy))
    assert _longest_run(looping) >= 8  # random weights: one token over and over
    assert _longest_run(guarded) <= 4


def test_every_door_can_set_the_guards(tmp_path: Path) -> None:
    assert parse_option("dry_multiplier", "0") == ("dry_multiplier", 0.0)  # /set and templates
    assert parse_option("min_p", 0.1) == ("min_p", 0.1)
    with pytest.raises(InputError, match="min_p must be in"):
        parse_option("min_p", "1.5")
    config = paths.config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[options]\ndry_multiplier = 0\nmin_p = 0.2\n", encoding="utf-8")
    opts = configured_options(GenerationOptions())
    assert (opts.dry_multiplier, opts.min_p) == (0.0, 0.2)
    config.write_text("[options]\ndry_base = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.toml: \[options\] option dry_base"):
        configured_options(GenerationOptions())


def test_a_bad_guard_flag_is_one_line(tiny_model_dir: Path) -> None:
    result = scribe("complete", "--model", str(tiny_model_dir), "--min-p", "2", stdin=b"Hi")
    assert result.returncode != 0
    assert result.stderr.decode().strip().splitlines() == [
        "scribe: error: --min-p must be in [0, 1) (0 is off); got '2'"
    ]

"""The adaptive debounce and early display (plugins/servers/pacing.py), with no clock involved
in any assertion: the debounce follows the costs it is given, and early display is checked with
intervals of zero or an hour."""

from __future__ import annotations

import pytest

from scribe.plugins.servers.pacing import (
    DEFAULT_CEILING_MS,
    SMOOTHING,
    AdaptiveDebounce,
    EarlyDisplay,
    whole_words,
)


def test_a_fixed_debounce_is_what_was_set() -> None:
    debounce = AdaptiveDebounce(fixed_ms=40)
    debounce.record(2.0)
    assert not debounce.adaptive
    assert debounce.delay_s() == pytest.approx(0.040)


def test_before_any_measurement_it_waits_the_ceiling() -> None:
    assert AdaptiveDebounce().delay_s() == pytest.approx(DEFAULT_CEILING_MS / 1000)


def test_cheap_generations_shrink_it_and_costly_ones_grow_it_up_to_the_ceiling() -> None:
    debounce = AdaptiveDebounce(ceiling_ms=150)
    debounce.record(0.004)  # a first token 4 ms after the start: start at once, nearly
    assert debounce.delay_s() == pytest.approx(0.004)
    debounce.record(0.104)  # one slow generation moves the average, not all the way
    assert debounce.delay_s() == pytest.approx(0.004 + SMOOTHING * 0.100)
    for _ in range(50):
        debounce.record(5.0)  # a model far slower than the ceiling
    assert debounce.delay_s() == pytest.approx(0.150)
    for _ in range(50):
        debounce.record(0.002)
    assert debounce.delay_s() == pytest.approx(0.002, abs=1e-4)


def test_a_generation_with_no_first_token_measures_nothing() -> None:
    debounce = AdaptiveDebounce()
    debounce.record(0.0)  # cancelled before its first token
    assert debounce.delay_s() == pytest.approx(DEFAULT_CEILING_MS / 1000)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (" the cat sa", " the cat"),
        (" the", ""),  # the only word may still grow
        (" the ", " the"),
        ("", ""),
        ("   ", ""),
        (" one\n two", " one"),
        ("x", ""),
    ],
)
def test_whole_words_keeps_the_words_that_can_no_longer_grow(text: str, shown: str) -> None:
    assert whole_words(text) == shown


def test_early_display_sends_the_first_words_at_once_then_only_growth() -> None:
    sent: list[str] = []
    early = EarlyDisplay(sent.append, interval_s=0)
    for text in [" the", " the c", " the cat", " the cat sat", " the cat sat on", " the dog ran"]:
        early.offer(text)
    # A changed start (" the dog") is not a growth of what shows: the final answer replaces it.
    assert sent == [" the", " the cat", " the cat sat"]


def test_early_display_waits_the_interval_between_updates() -> None:
    sent: list[str] = []
    early = EarlyDisplay(sent.append, interval_s=3600)
    for text in [" the cat", " the cat sat on", " the cat sat on the mat"]:
        early.offer(text)
    assert sent == [" the"]  # the first at once; the rest waits for the final answer

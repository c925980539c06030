"""The editor's prompt built in steps (engine/prompting/editor_window.py): the reply's length,
the budget, the FIM split and its markers, and a window per document."""

from __future__ import annotations

from dataclasses import dataclass

from scribe.engine.prompting import editor_window as ew
from scribe.engine.prompting.fitting import MARGIN
from scribe.engine.runtime.generation import CHARS_PER_TOKEN_BOUND


def words(text: str) -> list[int]:
    """One token per word: budgets are easy to count."""
    return list(range(len(text.split())))


@dataclass(frozen=True)
class Request:
    document: str
    text: str
    cursor: int
    suffix: str = ""
    max_tokens: int = ew.DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class Fim:
    prefix: str = "<P>"
    suffix: str = "<S>"
    middle: str = "<M>"

    def prompt(self, before: str, after: str) -> str:
        return f"{self.prefix}{before}{self.suffix}{after}{self.middle}"


def test_the_character_bound_is_the_engines() -> None:
    # Repeated so that the editor servers answer `initialize` before torch is imported.
    assert ew.CHARS_PER_TOKEN_BOUND == CHARS_PER_TOKEN_BOUND


def test_the_reply_takes_at_most_half_the_window() -> None:
    assert ew.reply_tokens(32, 1024) == 32
    assert ew.reply_tokens(5000, 1024) == 512
    assert ew.reply_tokens(0, 1024) == 1
    assert ew.prompt_budget(1024, 32) == 1024 - 32 - MARGIN


def test_fim_shares_leave_one_token_per_marker() -> None:
    before, after = ew.fim_shares(1000)
    assert after == ew.FIM_SUFFIX_TOKENS
    assert before + after + ew.FIM_MARKER_TOKENS == 1000
    assert ew.FIM_MARKER_TOKENS == len(("prefix", "suffix", "middle"))
    small_before, small_after = ew.fim_shares(100)
    assert small_after == 25 and small_before == 100 - 25 - 3


def test_plain_prompt_gives_back_the_blanks_before_the_cursor() -> None:
    windows = ew.EditorWindows(words, n_positions=1024)
    prompt = windows.prompt(Request("a", "The cat ", 8, suffix="on the mat"))
    assert (prompt.text, prompt.heal, prompt.max_tokens) == ("The cat ", True, 32)


def test_fim_prompt_reads_both_sides_within_the_window() -> None:
    windows = ew.EditorWindows(words, n_positions=64, fim=Fim())
    text = " ".join(f"w{i}" for i in range(200)) + " "
    prompt = windows.prompt(Request("a", text, len(text), suffix="after the cursor", max_tokens=8))
    assert prompt.text.startswith("<P>") and prompt.text.endswith("<S>after the cursor<M>")
    assert not prompt.heal  # FIM keeps blanks: training split anywhere
    before_budget, _ = ew.fim_shares(ew.prompt_budget(64, 8))
    before = prompt.text[len("<P>") : prompt.text.index("<S>")]
    assert len(words(before)) <= before_budget
    # Without text after the cursor the prompt is plain, and the window keeps the FIM budget.
    plain = windows.prompt(Request("a", text, len(text), max_tokens=8))
    assert not plain.text.startswith("<P>")
    assert windows.window("a", before_budget).budget == before_budget


def test_a_window_per_document_and_only_the_latest_kept() -> None:
    windows = ew.EditorWindows(words, n_positions=1024)
    first = windows.window("doc0", 100)
    assert windows.window("doc0", 100) is first
    assert windows.window("doc0", 90) is not first  # a new budget starts a new window
    for i in range(1, ew.MAX_WINDOWS + 1):
        windows.window(f"doc{i}", 100)
    kept = windows._windows
    assert len(kept) == ew.MAX_WINDOWS and "doc0" not in kept  # the least recent went

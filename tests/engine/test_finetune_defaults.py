"""Defaults that fit the base model: the learning rate by size and method, epochs by data size
under a time cap, the flags winning, and the plan a dry run shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from scribe.engine.finetune import defaults
from scribe.tui.cli import main
from tests.factory import write_text


@pytest.mark.parametrize(
    ("params", "method", "lr"),
    [
        (7_000_000, "full", 1e-3),
        (124_000_000, "full", 1e-4),
        (355_000_000, "full", 5e-5),
        (7_000_000, "lora", 3e-3),
        (124_000_000, "lora", 1e-3),
        (40_000_000, "prefix", 1e-2),
    ],
)
def test_learning_rate_follows_the_base_size(params: int, method: str, lr: float) -> None:
    assert defaults.learning_rate(params, method, from_scratch=False) == lr


def test_small_data_gets_more_passes_within_the_time_cap() -> None:
    small = defaults.epochs_for(120_000, 7_000_000, "full")
    large = defaults.epochs_for(20_000_000, 7_000_000, "full")
    assert small == 5 and large == 1
    # GPT-2 124M trains ~15x slower: the cap keeps its default run short, never under one pass.
    assert defaults.epochs_for(120_000, 124_000_000, "full") == 1


def test_flags_win_and_the_note_says_what_was_chosen() -> None:
    chosen = defaults.choose(7_000_000, "full", False, 120_000, lr=None, epochs=None)
    assert chosen.note == "lr 1e-3 (7M-parameter base), 5 epochs of 120,000 tokens"
    given = defaults.choose(7_000_000, "full", False, 120_000, lr=2e-4, epochs=2)
    assert (given.lr, given.epochs, given.note) == (2e-4, 2, "")


def test_dry_run_prints_the_chosen_defaults_and_an_estimated_time(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_text(tmp_path, paragraphs=60)
    args = ["finetune", str(data), "--out", "plan", "--model", str(tiny_model_dir), "--dry-run"]
    assert main([*args, "--block-size", "32", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "lr 1e-3 (0M-parameter base)" in captured.err
    assert "of training on this machine" in captured.out and "about " in captured.out


def test_help_table_is_the_defaults_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    from scribe.tui.commands import finetune_cmd

    lines = finetune_cmd.defaults_help().splitlines()
    assert lines[2].split() == ["under", "20M", "1e-3", "3e-3", "1e-2", "under", "300k", "5"]
    assert lines[5].split() == ["200M+", "5e-5", "3e-4", "1e-2", "10M+", "1"]
    # A changed table changes the help: there is no second copy to forget.
    changed = ((1e9, {"full": 2e-4, "lora": 2e-3, "prefix": 2e-2}), *defaults.LR_TABLE[1:])
    monkeypatch.setattr(defaults, "LR_TABLE", changed)
    assert finetune_cmd.defaults_help().splitlines()[2].split()[:5] == [
        "under",
        "1000M",
        "2e-4",
        "2e-3",
        "2e-2",
    ]

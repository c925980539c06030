"""`scribe finetune` from the command line: help, dry run, a real run shown by `scribe models`,
one-line errors for bad input (and nothing left that looks like a model), and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from scribe.engine import paths
from scribe.tui.cli import main
from tests.factory import write_pairs, write_text
from tests.tui.cli_run import SCRIBE

SMALL = ["--block-size", "32", "--batch-size", "4", "--threads", "1"]


def test_help_documents_the_shapes_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = capsys.readouterr().out
    for flag in ("--from-scratch", "--method", "--resume", "--merge", "--threads", "--dry-run"):
        assert flag in text
    assert "small (6x384" in text and "LAYERSxWIDTH" in text


def test_dry_run_shows_counts_and_a_masked_example_and_writes_nothing(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_pairs(tmp_path)
    code = main(
        ["finetune", str(data), "--out", "x", "--model", str(tiny_model_dir), "--dry-run", *SMALL]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "train" in out and "val" in out and "test" in out
    assert "⟦" in out and "Verb:⟧" in out  # the prompt is marked as context only
    assert "dry run: nothing trained" in out
    assert not (paths.models_dir() / "x").exists()


@pytest.mark.slow
def test_a_run_prints_the_before_after_table_and_shows_in_scribe_models(
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = write_text(tmp_path, paragraphs=80)
    args = ["finetune", str(data), "--out", "mine", "--model", str(tiny_model_dir)]
    args += ["--max-steps", "6", "--lr", "3e-3", *SMALL]
    monkeypatch.setattr("sys.argv", ["scribe", *args])  # what the card records as the command
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test perplexity" in out and "before" in out and "after" in out
    card = json.loads((paths.models_dir() / "mine" / "scribe.json").read_text())
    assert card["command"].startswith("scribe finetune ") and "--max-steps 6" in card["command"]
    assert card["samples"] and set(card["samples"][0]) == {"prompt", "before", "after"}
    assert main(["models"]) == 0
    listed = capsys.readouterr().out
    assert "mine" in listed and "ppl " in listed


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({}, [], "no training data given"),
        ({"b.txt": b"\x00\x01binary"}, [], "looks binary"),
        ({"e.txt": b""}, [], "empty file"),
        (
            {"d.jsonl": b'{"prompt": "a", "completion": "b"}\n{oops}\n'},
            [],
            "d.jsonl:2: not valid JSON",
        ),
        ({"k.jsonl": b'{"input": "a"}\n'}, [], 'k.jsonl:1: needs "prompt" + "completion"'),
        (
            {"s.txt": b"Too short."},
            ["--val-fraction", "0", "--test-fraction", "0", "--patience", "0"],
            "less than one block",
        ),
        ({"ok.txt": None}, ["--model", "no-such-model"], "'no-such-model' is not in the"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_model(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], files, extra, message
) -> None:
    args = []
    for name, content in files.items():
        path = tmp_path / name
        if content is None:
            write_text(tmp_path, name, 40)
        else:
            path.write_bytes(content)
        args.append(str(path))
    model = [] if "--model" in extra else ["--model", str(tiny_model_dir)]
    code = main(["finetune", *args, "--out", "bad", *model, *SMALL, *extra])
    err = capsys.readouterr().err
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("scribe: error: ")]
    assert len(errors) == 1 and message in errors[0], err
    assert err.strip().endswith(errors[0]) and "Traceback" not in err  # progress notes may precede
    out = paths.models_dir() / "bad"
    assert not (out / "config.json").exists()


def test_an_existing_out_is_refused_unless_resume_or_overwrite(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    target = paths.models_dir() / "taken"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    base = ["finetune", str(data), "--out", "taken", "--model", str(tiny_model_dir), *SMALL]
    assert main(base) == 2
    assert "already exists; pass --resume" in capsys.readouterr().err
    assert main([*base, "--resume"]) == 2
    assert "no unfinished run to resume" in capsys.readouterr().err
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "diary.txt").write_text("private")
    assert main(["finetune", str(data), "--out", str(mine), "--overwrite", *SMALL]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (mine / "diary.txt").exists()


def test_loading_an_unfinished_run_says_how_to_resume() -> None:
    from scribe.engine.errors import ModelError
    from scribe.engine.runtime.models import load

    run = paths.models_dir() / "half" / "run"
    run.mkdir(parents=True)
    (run / "settings.json").write_text("{}")
    with pytest.raises(ModelError, match="unfinished `scribe finetune` run.*--resume"):
        load("half")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_saves_a_checkpoint_and_exits_130(
    tmp_path: Path, tiny_model_dir: Path, signum: signal.Signals
) -> None:
    data = write_text(tmp_path, paragraphs=80)
    out = paths.models_dir() / "interrupted"
    proc = subprocess.Popen(
        [
            *SCRIBE,
            "finetune",
            str(data),
            "--out",
            "interrupted",
            "--model",
            str(tiny_model_dir),
            "--max-steps",
            "100000",
            "--sample-every",
            "0",
            *SMALL,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    metrics = out / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert "interrupted at step" in err.decode() and "--resume" in err.decode()
    assert "Traceback" not in err.decode()
    checkpoints = sorted((out / "run" / "checkpoints").glob("step-*"))
    assert checkpoints and (checkpoints[-1] / "weights.safetensors").exists()
    assert not (out / "config.json").exists()  # not a model until the run finishes

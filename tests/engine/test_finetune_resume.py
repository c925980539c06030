"""Checkpoints and resume: after `kill -9`, `--resume` finishes with the same model as a run that
was never interrupted (same seed), and a half-written checkpoint never counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.finetune.checkpoints import list_checkpoints
from tests.factory import write_text

pytestmark = pytest.mark.slow

# Runs the training in a child process that SIGKILLs itself right after step KILL_AT: a real
# kill -9 (no handler, no cleanup) at a known point, so the test does not race the training.
KILLER = """
import json, os, signal, sys
from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.finetune.events import StepDone

kill_at = int(sys.argv[2])

def on_event(event):
    if isinstance(event, StepDone) and event.step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

run_finetune(FinetuneSettings(**json.loads(sys.argv[1])), on_event)
"""


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def settings(data: Path, out: Path, model: Path, **changes) -> FinetuneSettings:
    base = dict(
        data=[str(data)],
        out=str(out),
        model=str(model),
        block_size=32,
        batch_size=4,
        grad_accum=2,
        max_steps=14,
        eval_every=2,
        save_every=3,
        threads=1,
        lr=3e-3,
        dropout=0.1,
        patience=0,
        sample_every=0,
        seed=7,
        bf16=False,  # fp32 arithmetic: these tests compare numbers that bf16 would move
    )
    base.update(changes)
    return FinetuneSettings(**base)


def test_kill_9_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_text(tmp_path, paragraphs=100)
    straight = settings(data, tmp_path / "straight", tiny_model_dir)
    run_finetune(straight)

    killed = settings(data, tmp_path / "killed", tiny_model_dir)
    child = subprocess.run(
        [sys.executable, "-c", KILLER, json.dumps(killed.__dict__), "8"],
        capture_output=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert child.returncode == -9, child.stderr.decode()
    run_dir = tmp_path / "killed" / "run"
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-0000003", "step-0000006"]
    assert not (tmp_path / "killed" / "config.json").exists()
    # A checkpoint killed mid-write is left under its temp name, which never counts.
    partial = run_dir / "checkpoints" / ".step-0000009.tmp-123"
    partial.mkdir()
    (partial / "weights.safetensors").write_bytes(b"truncated")
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-0000003", "step-0000006"]

    resumed = settings(data, tmp_path / "killed", tiny_model_dir, resume=True)
    result = run_finetune(resumed)
    assert result.outcome.steps == 14

    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)

    # The metrics read as one run: the steps after the checkpoint were logged once.
    def losses(out: Path) -> list[tuple[int, float]]:
        lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
        return [(r["step"], r["loss"]) for r in map(json.loads, lines) if "loss" in r]

    assert [s for s, _ in losses(tmp_path / "killed")] == list(range(1, 15))
    for (_, x), (_, y) in zip(
        losses(tmp_path / "straight"), losses(tmp_path / "killed"), strict=True
    ):
        assert x == pytest.approx(y, abs=1e-6)

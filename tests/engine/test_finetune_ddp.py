"""Scale-out: the same command under `torchrun --nproc_per_node 2` (gloo, 2 CPU processes) trains
the same model as one process with the same global batch."""

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
from tests.factory import write_text

pytestmark = pytest.mark.slow

COMMON = [
    "--no-bf16",  # fp32 arithmetic: these tests compare numbers that bf16 would move
    "--block-size",
    "32",
    "--max-steps",
    "6",
    "--eval-every",
    "3",
    "--lr",
    "3e-3",
    "--dropout",
    "0",
    "--threads",
    "1",
    "--sample-every",
    "0",
    "--seed",
    "3",
]


def test_two_processes_match_one_with_the_same_global_batch(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_text(tmp_path, paragraphs=80)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "scribe.tui.cli",
            "finetune",
            str(data),
            "--out",
            str(tmp_path / "ddp"),
            "--model",
            str(tiny_model_dir),
            "--batch-size",
            "2",
            *COMMON,
        ],
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    out = ddp.stdout.decode()
    assert out.count("test perplexity") == 1  # rank 0 alone reports

    threads = torch.get_num_threads()
    try:
        single = run_finetune(
            FinetuneSettings(
                data=[str(data)],
                out=str(tmp_path / "single"),
                model=str(tiny_model_dir),
                batch_size=4,
                block_size=32,
                max_steps=6,
                eval_every=3,
                lr=3e-3,
                dropout=0.0,
                threads=1,
                sample_every=0,
                seed=3,
                bf16=False,
            )
        )
    finally:
        torch.set_num_threads(threads)
    a = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    b = load_file(str(tmp_path / "single" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    card = json.loads((tmp_path / "ddp" / "scribe.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["global_batch"] == 4
    assert card["metrics"]["test_perplexity_after"] == pytest.approx(
        single.scores.after.metrics["perplexity"], rel=1e-4
    )

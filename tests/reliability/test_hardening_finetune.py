"""Issue 23, group 1: `scribe finetune` through the real command. --overwrite destroys nothing
before the new run has its data and base (and never the base itself), one run per --out, --resume
refuses changed settings and names its checkpoint, runs resume from any folder, a run never trains
on its own output, pipes are data, bad flags and names are one line, and the default epochs fit
the time the README promises on the machine that runs them."""

from __future__ import annotations

import fcntl
import json
import os
import re
import resource
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from scribe.engine import paths
from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune.events import StepDone
from tests.factory import write_text
from tests.tui.cli_run import SCRIBE, scribe

pytestmark = pytest.mark.slow  # each test runs `scribe finetune` in a subprocess

SMALL = ["--block-size", "32", "--batch-size", "4", "--threads", "1", "--max-steps", "2"]
QUIET = ["--patience", "0", "--sample-every", "0", "--eval-examples", "0"]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def one_error(err: str, *words: str) -> str:
    """The one `scribe: error:` line (progress notes may precede it), holding each of `words`."""
    errors = [line for line in err.splitlines() if line.startswith("scribe: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in errors[0], err
    return errors[0]


def a_users_model(tiny_model_dir: Path, name: str) -> Path:
    """A finished scribe model under models/NAME (the tiny model with a scribe card)."""
    out = paths.models_dir() / name
    shutil.copytree(tiny_model_dir, out)
    (out / "scribe.json").write_text(json.dumps({"base_model": "tiny", "method": "full"}))
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_base_as_out_is_refused_and_kept(tmp_path: Path, tiny_model_dir: Path) -> None:
    m1 = a_users_model(tiny_model_dir, "m1")
    before = snapshot(m1)
    data = write_text(tmp_path, paragraphs=40)
    done = scribe("finetune", str(data), "--model", "m1", "--out", "m1", "--overwrite", *SMALL)
    assert done.returncode == 2
    one_error(done.stderr.decode(), "--out m1 is the base model", "choose another --out")
    assert snapshot(m1) == before


@pytest.mark.parametrize("mistake", ["data", "model"])
def test_overwrite_with_a_typo_destroys_nothing(
    tmp_path: Path, tiny_model_dir: Path, mistake: str
) -> None:
    mine = a_users_model(tiny_model_dir, "mine")
    before = snapshot(mine)
    data = str(write_text(tmp_path, paragraphs=40))
    model = str(tiny_model_dir)
    if mistake == "data":
        data += "t"  # notes.txtt
    else:
        model = str(tmp_path / "no-such-model")
    done = scribe("finetune", data, "--model", model, "--out", "mine", "--overwrite", *SMALL)
    assert done.returncode != 0
    one_error(done.stderr.decode())
    assert snapshot(mine) == before


def test_overwrite_keeps_the_old_model_until_the_new_one_is_saved(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    mine = a_users_model(tiny_model_dir, "mine")
    before = snapshot(mine)
    data = str(write_text(tmp_path, paragraphs=40))
    args = [data, "--model", str(tiny_model_dir), "--out", "mine", "--overwrite", *SMALL]
    # The new run fails after its data and base are loaded: a block larger than the model.
    done = scribe("finetune", *args, "--block-size", "100000")
    assert done.returncode == 2
    one_error(done.stderr.decode(), "--block-size")
    assert snapshot(mine) == before
    assert sorted(p.name for p in paths.models_dir().iterdir()) == ["mine"]


def test_a_second_run_into_one_out_is_refused_with_the_pid(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    lock = paths.models_dir() / ".busy.lock"
    with lock.open("w") as held:  # what a running finetune into --out busy holds
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        done = scribe("finetune", str(data), "--model", str(tiny_model_dir), "--out", "busy")
    assert done.returncode == 2
    one_error(done.stderr.decode(), "another finetune (pid 4242)")
    assert not (paths.models_dir() / "busy").exists()


def test_a_finished_run_leaves_no_lock(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=40)
    args = [str(data), "--model", str(tiny_model_dir), "--out", "done", *SMALL, *QUIET]
    done = scribe("finetune", *args, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert sorted(p.name for p in paths.models_dir().iterdir()) == ["done"]


def stop_at(step: int):
    def on_event(event: object) -> None:
        if isinstance(event, StepDone) and event.step == step:
            raise KeyboardInterrupt  # as Ctrl-C would

    return on_event


@pytest.fixture
def stopped_run(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run stopped at step 5 (checkpoints at 2 and 4), started in its own folder with a
    relative DATA path."""
    start = tmp_path / "start"
    write_text(start, paragraphs=60)
    monkeypatch.chdir(start)
    out = paths.models_dir() / "stopped"
    settings = FinetuneSettings(
        data=["story.txt"],
        out=str(out),
        model=str(tiny_model_dir),
        block_size=32,
        batch_size=4,
        max_steps=6,
        eval_every=2,
        save_every=2,
        keep_checkpoints=3,
        threads=1,
        patience=0,
        sample_every=0,
        bf16=False,
        seed=5,
    )
    with pytest.raises(KeyboardInterrupt):
        run_finetune(settings, stop_at(5))
    monkeypatch.chdir(tmp_path)
    return out


def test_resume_refuses_changed_data_and_settings(stopped_run: Path, tmp_path: Path) -> None:
    other = write_text(tmp_path / "other", paragraphs=60)
    args = ["--out", "stopped", "--resume", "--lr", "0.01", "--max-steps", "9"]
    done = scribe("finetune", str(other), *args)
    assert done.returncode == 2
    line = one_error(done.stderr.decode(), "DATA", "--lr 0.01", "--max-steps 9", "--overwrite")
    assert "--batch-size" not in line  # the ones given as they were are not listed
    assert ckpt.list_checkpoints(stopped_run / "run")  # nothing touched


@pytest.mark.slow
def test_resume_from_another_folder_names_a_damaged_checkpoint(
    stopped_run: Path, tmp_path: Path
) -> None:
    found = ckpt.list_checkpoints(stopped_run / "run")
    assert [p.name for p in found] == ["step-0000002", "step-0000004"]
    weights = found[-1] / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as by a failing disk
    cut = stopped_run / "run" / "checkpoints" / ".step-0000006.part-999"  # killed mid-write
    cut.mkdir()
    (cut / "weights.safetensors").write_bytes(b"\0" * 10)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [*SCRIBE, "finetune", "--out", "stopped", "--resume"],
        cwd=elsewhere,
        capture_output=True,
        timeout=300,
    )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "step-0000004" in err and "damaged" in err
    assert "step-0000006 (cut off mid-write)" in err and not cut.exists()
    assert "resuming from step 2 (checkpoint step-0000002)" in err
    assert (stopped_run / "config.json").exists()


def test_out_inside_the_data_folder_is_not_data(tmp_path: Path, tiny_model_dir: Path) -> None:
    notes = tmp_path / "notes"
    write_text(notes, paragraphs=40)
    run = notes / "mine" / "run"  # a start that stopped before its first checkpoint
    run.mkdir(parents=True)
    (run / "settings.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 3.2}\n')
    out = str(notes / "mine")
    done = scribe("finetune", str(notes), "--out", out, "--model", str(tiny_model_dir), "--dry-run")
    assert done.returncode == 0, done.stderr.decode()
    shown = done.stdout.decode()  # the files line, wrapped at the console's width
    assert "story.txt" in shown and "metrics.jsonl" not in shown


def test_data_from_a_pipe_is_read(tmp_path: Path, tiny_model_dir: Path) -> None:
    text = write_text(tmp_path, paragraphs=40).read_bytes()
    args = ["/dev/stdin", "--out", "piped", "--model", str(tiny_model_dir), "--dry-run"]
    done = scribe("finetune", *args, *SMALL, stdin=text)
    assert done.returncode == 0, done.stderr.decode()
    assert "dry run: nothing trained" in done.stdout.decode()


def test_an_out_named_like_the_base_leaves_nothing(tmp_path: Path) -> None:
    data = write_text(tmp_path, paragraphs=40)
    done = scribe("finetune", str(data), "--model", "gpt2", "--out", "gpt2", *SMALL)
    assert done.returncode == 2
    one_error(done.stderr.decode(), "--out gpt2", "choose another --out")
    assert not (paths.models_dir() / "gpt2").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--lora-dropout", "5", "--method", "lora"], ["--lora-dropout must be in [0, 1)"]),
        (["--from-scratch", "1x200"], ["--from-scratch 1x200", "heads"]),
        (["--out", "x" * 300], ["longer than", "shorter --out"]),
    ],
)
def test_bad_flags_are_one_line(
    tmp_path: Path, tiny_model_dir: Path, flags: list[str], words: list[str]
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    model = [] if "--from-scratch" in flags else ["--model", str(tiny_model_dir)]
    out = [] if "--out" in flags else ["--out", "bad"]
    done = scribe("finetune", str(data), *out, *model, *flags, *SMALL)
    assert done.returncode == 2
    one_error(done.stderr.decode(), *words)
    assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())


def test_overwrite_through_a_symlink_is_one_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    real = a_users_model(tiny_model_dir, "real")
    before = snapshot(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    data = write_text(tmp_path, paragraphs=40)
    args = [str(data), "--out", str(link), "--overwrite", "--model", str(tiny_model_dir)]
    done = scribe("finetune", *args, *SMALL)
    assert done.returncode == 2
    one_error(done.stderr.decode(), "symbolic link")
    assert snapshot(real) == before and link.is_symlink()


def test_a_full_disk_is_one_line_and_loses_nothing(tmp_path: Path, tiny_model_dir: Path) -> None:
    keep = a_users_model(tiny_model_dir, "keep")
    before = snapshot(keep)
    data = write_text(tmp_path, paragraphs=40)
    weights = (tiny_model_dir / "model.safetensors").stat().st_size
    limit = weights // 2  # the data and caches fit; the weights do not (EFBIG)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [str(data), "--out", "big", "--model", str(tiny_model_dir), *SMALL, *QUIET]
    done = subprocess.run(
        [*SCRIBE, "finetune", *args, "--save-every", "1000"],
        capture_output=True,
        timeout=300,
        preexec_fn=small_files,
        env=os.environ.copy(),
    )
    assert done.returncode == 2, done.stderr.decode()
    one_error(done.stderr.decode(), "cannot write", "--resume")
    assert snapshot(keep) == before
    assert not (paths.models_dir() / "big" / "config.json").exists()


@pytest.mark.parametrize(("minutes", "epochs"), [("0.0001", 1), ("100", 5)])
def test_the_default_epochs_fit_the_time_measured_here(
    tmp_path: Path, tiny_model_dir: Path, minutes: str, epochs: int
) -> None:
    """A tiny time budget gets one epoch, a large one the table's five (small data); the plan
    says what it measured and what it fitted."""
    data = write_text(tmp_path, paragraphs=40)
    args = [str(data), "--out", "fit", "--model", str(tiny_model_dir), "--dry-run"]
    more = ["--block-size", "32", "--batch-size", "4", "--threads", "1", "--minutes", minutes]
    done = scribe("finetune", *args, *more)
    assert done.returncode == 0, done.stderr.decode()
    said = re.search(r"measured ([\d,]+) tok/s: training (\S+) epochs", done.stderr.decode())
    assert said, done.stderr.decode()
    assert float(said[2]) == epochs

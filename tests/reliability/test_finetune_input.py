"""`scribe finetune` against hostile and unlucky input: --overwrite never deletes what scribe did
not write, a failed start never blocks a retry, a damaged last checkpoint falls back to an
intact one, numbers are finite and in range, a diverged run saves no model, a full disk is one
line, and outputs are private."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest
import torch

from scribe.engine import paths
from scribe.engine.errors import InputError
from scribe.engine.finetune import FinetuneSettings, run_finetune
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune.events import Stage, StepDone
from scribe.engine.runtime.model_card import write_card
from scribe.tui.cli import main
from tests.factory import write_text

SMALL = ["--block-size", "32", "--batch-size", "4", "--threads", "1", "--max-steps", "4"]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("scribe: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("leftover", ["run", "scribe.json"])
def test_overwrite_keeps_a_folder_that_holds_the_users_files(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], leftover: str
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "thesis.tex").write_text("my thesis")
    if leftover == "run":
        (proj / "run").mkdir()
        (proj / "run" / "settings.json").write_text("{}")
    else:
        (proj / "scribe.json").write_text(json.dumps({"base_model": "x", "method": "full"}))
    args = [
        "finetune",
        str(data),
        "--out",
        str(proj),
        "--overwrite",
        "--model",
        str(tiny_model_dir),
    ]
    assert main([*args, *SMALL]) == 2
    assert "thesis.tex" in one_error(capsys.readouterr().err)
    assert (proj / "thesis.tex").read_text() == "my thesis"


def test_overwrite_refuses_a_card_that_is_not_scribes(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    other = tmp_path / "other"
    other.mkdir()
    (other / "scribe.json").write_text('{"app": "another program"}')
    args = [
        "finetune",
        str(data),
        "--out",
        str(other),
        "--overwrite",
        "--model",
        str(tiny_model_dir),
    ]
    assert main([*args, *SMALL]) == 2
    assert "not a scribe model card" in one_error(capsys.readouterr().err)
    assert (other / "scribe.json").read_text() == '{"app": "another program"}'


@pytest.mark.slow
def test_overwrite_replaces_a_finished_scribe_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=60)
    base = ["finetune", str(data), "--out", "again", "--model", str(tiny_model_dir), *SMALL]
    assert main(base) == 0
    assert main([*base, "--overwrite"]) == 0
    out = paths.models_dir() / "again"
    assert (out / "config.json").exists()
    assert out.stat().st_mode & 0o077 == 0  # private to the user


@pytest.mark.slow
def test_a_failed_start_does_not_block_a_retry(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=60)
    base = ["finetune", str(data), "--out", "retry", "--model", str(tiny_model_dir), *SMALL]
    # The first try fails after its run folder was created: a block larger than the model.
    assert main([*base, "--block-size", "100000"]) == 2
    assert (paths.models_dir() / "retry" / "run").is_dir()
    assert main(base) == 0  # no --overwrite needed: nothing was trained
    assert (paths.models_dir() / "retry" / "config.json").exists()


def resumable(data: Path, model: Path, out: Path, **changes) -> FinetuneSettings:
    base = dict(
        data=[str(data)],
        out=str(out),
        model=str(model),
        block_size=32,
        batch_size=4,
        max_steps=8,
        eval_every=2,
        save_every=2,
        keep_checkpoints=3,
        threads=1,
        patience=0,
        sample_every=0,
        bf16=False,
        seed=5,
    )
    base.update(changes)
    return FinetuneSettings(**base)


def stop_at(step: int):
    def on_event(event: object) -> None:
        if isinstance(event, StepDone) and event.step == step:
            raise KeyboardInterrupt

    return on_event


@pytest.mark.slow
def test_resume_passes_over_a_damaged_last_checkpoint(tmp_path: Path, tiny_model_dir: Path) -> None:
    data = write_text(tmp_path, paragraphs=60)
    out = tmp_path / "broken-run"
    with pytest.raises(KeyboardInterrupt):
        run_finetune(resumable(data, tiny_model_dir, out), stop_at(7))
    found = ckpt.list_checkpoints(out / "run")
    assert [p.name for p in found] == ["step-0000002", "step-0000004", "step-0000006"]
    weights = found[-1] / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as by a failing disk
    events: list[object] = []
    result = run_finetune(resumable(data, tiny_model_dir, out, resume=True), events.append)
    notes = [e.message for e in events if isinstance(e, Stage)]
    assert any("step-0000006" in n and "damaged" in n for n in notes), notes
    assert any(n.startswith("resuming from step 4 (") for n in notes), notes
    assert result.outcome is not None and result.outcome.steps == 8


def test_resume_with_every_checkpoint_damaged_is_one_error(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    data = write_text(tmp_path, paragraphs=60)
    out = tmp_path / "all-broken"
    with pytest.raises(KeyboardInterrupt):
        run_finetune(resumable(data, tiny_model_dir, out), stop_at(3))
    for checkpoint in ckpt.list_checkpoints(out / "run"):
        (checkpoint / "state.json").write_text("{not json")
    with pytest.raises(InputError, match="no intact checkpoint.*--overwrite"):
        run_finetune(resumable(data, tiny_model_dir, out, resume=True))


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--epochs", "nan", "--epochs must be a finite number"),
        ("--lr", "inf", "--lr must be a finite number"),
        ("--dropout", "nan", "--dropout must be a finite number"),
        ("--seed", "99999999999999999999999", "--seed 99999999999999999999999 is out of range"),
        ("--fim", "nan", "--fim must be a finite number"),
        ("--warmup", "-1", "--warmup must be 0 or more"),
    ],
)
def test_numbers_are_checked_where_they_enter(
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    message: str,
) -> None:
    data = write_text(tmp_path, paragraphs=40)
    small = SMALL[:-2] if flag == "--epochs" else SMALL  # --epochs and --max-steps exclude
    args = ["finetune", str(data), "--out", "nums", "--model", str(tiny_model_dir), *small]
    assert main([*args, flag, value]) == 2
    assert message in one_error(capsys.readouterr().err)
    assert not (paths.models_dir() / "nums").exists()


def test_a_diverged_run_saves_no_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scribe.engine.finetune import trainer

    data = write_text(tmp_path, paragraphs=40)
    real = trainer.Trainer._step
    monkeypatch.setattr(trainer.Trainer, "_step", lambda self, m, s: real(self, m, s) * math.nan)
    with pytest.raises(trainer.TrainingDiverged, match="loss is nan at step 1.*lower --lr"):
        run_finetune(resumable(data, tiny_model_dir, tmp_path / "nan-run"))
    assert not (tmp_path / "nan-run" / "config.json").exists()


def test_a_card_never_holds_bare_nan(tmp_path: Path) -> None:
    path = write_card(tmp_path, {"metrics": {"loss": math.nan, "ppl": [math.inf, 2.0]}})
    assert json.loads(path.read_text()) == {"metrics": {"loss": None, "ppl": [None, 2.0]}}


@pytest.mark.slow
def test_a_full_disk_is_one_line_that_says_resume(
    tmp_path: Path,
    tiny_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "checkpoints/step-0000002")

    monkeypatch.setattr(ckpt, "save_checkpoint", full)
    data = write_text(tmp_path, paragraphs=40)
    args = ["finetune", str(data), "--out", "full", "--model", str(tiny_model_dir), *SMALL]
    assert main([*args, "--save-every", "2", "--max-steps", "6"]) == 2
    line = one_error(capsys.readouterr().err)
    assert "No space left on device" in line and "--resume" in line

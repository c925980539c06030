"""Checkpoints in the run folder, each written atomically (temp name, fsync, rename).

A checkpoint folder `step-000120/` holds the trainable weights (safetensors), the optimizer state
(torch.save, read back with weights_only=True), the RNG states, and `state.json` (step, best
validation loss, early-stopping count). The data position is the step itself: the batch order is a
pure function of (seed, step), see trainer.py. A folder without the final rename never counts.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from scribe.engine.files.atomic import atomic_path

CHECKPOINTS = "checkpoints"
PREFIX = "step-"


@dataclass
class TrainState:
    step: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    best_file: str | None = None  # file name under checkpoints/ holding the best weights
    bad_evals: int = 0  # evaluations since the last improvement
    last_val_loss: float | None = None


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters being trained, by name (tied weights appear once)."""
    return {
        n: p.detach().to("cpu").clone().contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
    if missing:
        raise ValueError(f"checkpoint lacks {missing[0]}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)


def save_weights(
    path: Path, model: torch.nn.Module, metadata: dict[str, str] | None = None
) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(trainable_state(model), str(tmp), metadata=metadata)


def load_weights(path: Path, model: torch.nn.Module) -> None:
    from safetensors.torch import load_file

    load_trainable(model, load_file(str(path)))


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda{i}"] = s
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        cuda = [state[k] for k in sorted(state) if k.startswith("cuda")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS


def save_checkpoint(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    keep: int,
) -> Path:
    from safetensors.torch import save_file

    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{state.step:07d}"
    if final.exists():
        shutil.rmtree(final)
    with atomic_path(final) as tmp:
        tmp.mkdir()
        save_file(trainable_state(model), str(tmp / "weights.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        save_file(rng_state(), str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")
    prune(run_dir, keep, state.best_file)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def partial_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints a kill cut off mid-write: atomic_path's temporary folders, never renamed."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f".{PREFIX}*.part-*") if p.is_dir())


def read_state(checkpoint: Path) -> TrainState:
    return TrainState(**json.loads((checkpoint / "state.json").read_text(encoding="utf-8")))


def load_checkpoint(
    checkpoint: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> TrainState:
    from safetensors.torch import load_file

    load_weights(checkpoint / "weights.safetensors", model)
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    set_rng_state(load_file(str(checkpoint / "rng.safetensors")))
    return read_state(checkpoint)


def prune(run_dir: Path, keep: int, current_best: str | None) -> None:
    """Keep the last `keep` checkpoints and the best-weights files they (or the run) need."""
    kept = list_checkpoints(run_dir)
    for old in kept[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    needed = {current_best} | {read_state(p).best_file for p in kept[-keep:]}
    for best in checkpoint_dir(run_dir).glob("best-*.safetensors"):
        if best.name not in needed:
            best.unlink()


def best_file_name(step: int) -> str:
    return f"best-{step:07d}.safetensors"

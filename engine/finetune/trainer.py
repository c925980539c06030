"""The training loop: AdamW (or Muon for the block matrices) on a warmup + cosine, constant or
linear-decay schedule, with evaluation and checkpoints.

The constant and linear schedules are the two halves of warmup-stable-decay: train at a constant
rate for as long as time allows (that checkpoint can always be continued), then decay to zero in
a short second run started from it.

Gradient accumulation and clipping, bf16 autocast, periodic evaluation with early stopping,
samples, atomic checkpoints, Ctrl-C, and DistributedDataParallel.

The batch for step s is a pure function of (seed, s): the training blocks are read in a seeded
permutation per epoch, as one endless stream, and step s takes positions [s*G, (s+1)*G) of it
(G = global batch in blocks). So a resumed run reads exactly what the uninterrupted one would, and
a 2-process run reads the same global batches as one process with twice the micro-batch.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scribe.engine.errors import ScribeError
from scribe.engine.files.atomic import atomic_path
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune.distributed import Dist, sum_all
from scribe.engine.finetune.events import (
    CheckpointSaved,
    EvalDone,
    EventSink,
    SampleDone,
    StepDone,
    TrainEnd,
)
from scribe.engine.finetune.optimizers import make_optimizer
from scribe.engine.finetune.tokens import Blocks

METRICS = "metrics.jsonl"


class TrainingDiverged(ScribeError):
    """The loss went NaN or infinite: nothing is saved as a model."""


class TrainingInterrupted(ScribeError):
    """Ctrl-C: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


@dataclass(frozen=True)
class Plan:
    total_steps: int
    micro_batch: int  # blocks per process per micro-step
    grad_accum: int
    lr: float
    warmup_steps: int
    weight_decay: float
    max_grad_norm: float
    eval_every: int
    save_every: int
    sample_every: int  # 0: off
    patience: int  # 0: off
    keep_checkpoints: int
    seed: int
    bf16: bool
    compile: bool = False
    schedule: str = "cosine"  # one of SCHEDULES
    optimizer: str = "adamw"  # one of OPTIMIZERS
    beta2: float = 0.95  # AdamW's second-moment decay

    def lr_at(self, step: int) -> float:
        """Linear warmup to lr, then: cosine down to lr/10 at the last step, constant, or a
        straight line down to zero at the last step."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "linear":
            return self.lr * (1.0 - progress)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class TrainOutcome:
    steps: int
    reason: str
    best_step: int | None
    best_val_loss: float | None
    final_val_loss: float | None
    tokens_per_s: float
    train_seconds: float
    trained_tokens: int


def token_loss_sum(model: Any, ids: torch.Tensor, mask: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Summed cross-entropy over the target tokens (mask[t] means token t is predicted from < t)."""
    with torch.autocast(ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=ids, use_cache=False).logits
    # Shift the targets rather than the logits: the (large) logits tensor is used as it is,
    # without a copy; the last position gets no target.
    targets = F.pad(ids[:, 1:].masked_fill(~mask[:, 1:], -100), (0, 1), value=-100)
    flat = logits.float().reshape(-1, logits.shape[-1])
    return F.cross_entropy(flat, targets.reshape(-1), ignore_index=-100, reduction="sum")


@torch.no_grad()
def evaluate_loss(model: Any, blocks: Blocks, batch: int, d: Dist, bf16: bool) -> float:
    """Mean loss per target token over all blocks (shared out over the ranks)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    mine = range(d.rank, len(blocks), d.world)
    idx = list(mine)
    for i in range(0, len(idx), batch):
        rows = idx[i : i + batch]
        ids, mask = blocks.ids[rows].to(d.device), blocks.mask[rows].to(d.device)
        total += float(token_loss_sum(model, ids, mask, bf16))
        count += float(mask[:, 1:].sum())
    total, count = sum_all(d, [total, count])
    model.train(was_training)
    return total / max(count, 1.0)


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        plan: Plan,
        train: Blocks,
        val: Blocks,
        run_dir: Path,
        d: Dist,
        emit: EventSink,
        sampler: Callable[[torch.nn.Module], list[tuple[str, str]]] | None = None,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.model = model  # the module whose parameters are saved (never the DDP wrapper)
        self.plan = plan
        self.train_blocks = train
        self.val_blocks = val
        self.run_dir = run_dir
        self.d = d
        self.emit = emit if d.main else (lambda _e: None)
        self.sampler = sampler
        self.stop_requested = stop_requested
        self.optimizer = make_optimizer(model, plan)
        self.state = ckpt.TrainState()
        self.global_batch = plan.micro_batch * plan.grad_accum * d.world
        self._perms: dict[int, torch.Tensor] = {}
        self.forward_model: Any = model
        if d.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [d.device.index] if d.device.type == "cuda" else None
            self.forward_model = DistributedDataParallel(model, device_ids=ids)
        if plan.compile:
            # Fuses the small element-wise ops that dominate a small model's step on a CPU;
            # the first steps (and the first evaluation) pay for the compilation.
            self.forward_model = torch.compile(self.forward_model)

    # -- data order -------------------------------------------------------------------------
    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.plan.seed * 100_003 + epoch)
            self._perms = {epoch: torch.randperm(len(self.train_blocks), generator=gen)}
        return self._perms[epoch]

    def positions(self, step: int) -> torch.Tensor:
        """The training block indices of step `step`'s global batch, in micro-batch order."""
        n = len(self.train_blocks)
        start = step * self.global_batch
        return torch.stack(
            [self._perm(p // n)[p % n] for p in range(start, start + self.global_batch)]
        )

    # -- resume -----------------------------------------------------------------------------
    def resume(self, checkpoint: Path) -> None:
        self.state = ckpt.load_checkpoint(checkpoint, self.model, self.optimizer)
        self._truncate_metrics(self.state.step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop records past the checkpoint, so metrics.jsonl reads as one run."""
        path = self.run_dir / METRICS
        if not self.d.main or not path.exists():
            return
        kept = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def _log(self, record: dict[str, Any]) -> None:
        if self.d.main:
            with (self.run_dir / METRICS).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> TrainOutcome:
        plan, state = self.plan, self.state
        model = self.forward_model
        model.train()
        block = self.train_blocks.ids.shape[1]
        tokens_per_step = self.global_batch * block
        reason = "finished"
        started = time.perf_counter()
        train_time = 0.0
        steps_here = 0
        while state.step < plan.total_steps:
            t0 = time.perf_counter()
            loss = self._step(model, state.step)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"training diverged: the loss is {loss} at step {state.step + 1}; "
                    "lower --lr (and keep --max-grad-norm on)"
                )
            state.step += 1
            steps_here += 1
            train_time += time.perf_counter() - t0
            speed = steps_here * tokens_per_step / max(train_time, 1e-9)
            epoch = state.step * self.global_batch / len(self.train_blocks)
            lr = plan.lr_at(state.step - 1)
            self._log(
                {"step": state.step, "loss": loss, "lr": lr, "tokens_per_s": speed, "epoch": epoch}
            )
            self.emit(StepDone(state.step, plan.total_steps, loss, lr, speed, epoch))
            last = state.step == plan.total_steps
            if state.step % plan.eval_every == 0 or last:
                if self._evaluate() and not last:
                    reason = "early stop"
                    break
            if plan.sample_every and self.sampler and (state.step % plan.sample_every == 0 or last):
                self._sample()
            if state.step % plan.save_every == 0 and not last:
                self._checkpoint()
            if self._stop_agreed():
                self._checkpoint()
                self.emit(TrainEnd(state.step, "interrupted", state.best_step, state.best_val_loss))
                raise TrainingInterrupted(
                    f"interrupted at step {state.step}: checkpoint saved; continue with the same "
                    "command plus --resume"
                )
        final_val = state.last_val_loss
        if (
            state.best_file
            and state.best_val_loss is not None
            and (final_val is None or state.best_val_loss < final_val)
        ):
            ckpt.load_weights(ckpt.checkpoint_dir(self.run_dir) / state.best_file, self.model)
        self.emit(TrainEnd(state.step, reason, state.best_step, state.best_val_loss))
        return TrainOutcome(
            steps=state.step,
            reason=reason,
            best_step=state.best_step,
            best_val_loss=state.best_val_loss,
            final_val_loss=final_val,
            tokens_per_s=steps_here * tokens_per_step / max(train_time, 1e-9),
            train_seconds=time.perf_counter() - started,
            trained_tokens=state.step * tokens_per_step,
        )

    def _step(self, model: Any, step: int) -> float:
        plan, d = self.plan, self.d
        for group in self.optimizer.param_groups:
            group["lr"] = plan.lr_at(step)
        idx = self.positions(step)
        count = max(int(self.train_blocks.mask[idx][:, 1:].sum()), 1)
        micro = plan.micro_batch
        loss_total = 0.0
        for k in range(plan.grad_accum):
            first = k * micro * d.world + d.rank * micro
            rows = idx[first : first + micro]
            ids = self.train_blocks.ids[rows].to(d.device)
            mask = self.train_blocks.mask[rows].to(d.device)
            sync = k == plan.grad_accum - 1 or not d.active
            with contextlib.nullcontext() if sync else model.no_sync():
                loss_sum = token_loss_sum(model, ids, mask, plan.bf16)
                # DDP averages gradients over ranks; scale so the result is the global token mean.
                (loss_sum * (d.world / count)).backward()
            loss_total += float(loss_sum.detach())
        if plan.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), plan.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return sum_all(d, [loss_total])[0] / count

    def _evaluate(self) -> bool:
        """Validation loss now; True when early stopping says stop."""
        plan, state = self.plan, self.state
        if len(self.val_blocks) == 0:
            return False
        val = evaluate_loss(
            self.forward_model, self.val_blocks, plan.micro_batch, self.d, plan.bf16
        )
        state.last_val_loss = val
        improved = state.best_val_loss is None or val < state.best_val_loss
        if improved:
            state.best_val_loss, state.best_step, state.bad_evals = val, state.step, 0
            state.best_file = ckpt.best_file_name(state.step)
            if self.d.main:
                ckpt.checkpoint_dir(self.run_dir).mkdir(parents=True, exist_ok=True)
                ckpt.save_weights(ckpt.checkpoint_dir(self.run_dir) / state.best_file, self.model)
        else:
            state.bad_evals += 1
        self._log({"step": state.step, "val_loss": val, "best_val_loss": state.best_val_loss})
        self.emit(EvalDone(state.step, val, state.best_val_loss or val, improved))
        return bool(plan.patience) and state.bad_evals >= plan.patience

    def _sample(self) -> None:
        if not self.d.main or self.sampler is None:
            return
        samples = self.sampler(self.model)
        self._log({"step": self.state.step, "samples": [list(s) for s in samples]})
        self.emit(SampleDone(self.state.step, samples))

    def _checkpoint(self) -> None:
        if self.d.main:
            path = ckpt.save_checkpoint(
                self.run_dir, self.model, self.optimizer, self.state, self.plan.keep_checkpoints
            )
            self.emit(CheckpointSaved(self.state.step, str(path)))
        if self.d.active:
            torch.distributed.barrier()

    def _stop_agreed(self) -> bool:
        """Ctrl-C on any rank stops every rank at the same step."""
        wanted = 1.0 if self.stop_requested() else 0.0
        return sum_all(self.d, [wanted])[0] > 0

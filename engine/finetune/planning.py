"""The training plan (steps, batch, learning rate, schedule) and the dry run's time estimate."""

from __future__ import annotations

import json
import math
import statistics
import time

from scribe.engine.files.atomic import atomic_write
from scribe.engine.finetune import defaults, hardware
from scribe.engine.finetune.base import Base
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.tokens import Blocks
from scribe.engine.finetune.trainer import Plan, token_loss_sum

PLAN = "plan.json"  # in the run folder: the fitted epochs, which a --resume keeps
MEASURE_STEPS = 5  # timed micro-steps at most...
MEASURE_SECONDS = 3.0  # ...while they take less than this (a large base times one)


def make_plan(ctx: RunContext, train: Blocks, base: Base) -> Plan:
    """The flags where given, else defaults that fit the base's size, the data's, and the
    time a training step takes here."""
    s, d = ctx.settings, ctx.dist
    bf16 = hardware.bf16_native(d.device) if s.bf16 is None else s.bf16
    # --max-steps sets the length itself: no epochs to choose (1.0 keeps them out of the note).
    epochs = 1.0 if s.max_steps is not None else s.epochs
    if epochs is None:
        epochs = _fitted_epochs(ctx, base, train, bf16)
    params = base.parameters
    chosen = defaults.choose(params, s.method, bool(s.from_scratch), train.targets, s.lr, epochs)
    if chosen.note:
        ctx.emit(Stage(chosen.note))
    global_batch = s.batch_size * s.grad_accum * d.world
    if s.max_steps is not None:
        total = s.max_steps
    else:
        total = max(1, math.ceil(chosen.epochs * len(train) / global_batch))
    every = s.eval_every or max(1, total // 10)
    warmup = int(s.warmup) if s.warmup >= 1 else max(1, round(s.warmup * total))
    return Plan(
        total_steps=total,
        micro_batch=s.batch_size,
        grad_accum=s.grad_accum,
        lr=chosen.lr,
        warmup_steps=min(warmup, total),
        weight_decay=s.weight_decay,
        max_grad_norm=s.max_grad_norm,
        eval_every=every,
        save_every=s.save_every or every,
        sample_every=every if s.sample_every is None else s.sample_every,
        patience=s.patience,
        keep_checkpoints=s.keep_checkpoints,
        seed=s.seed,
        bf16=bf16,
        compile=s.compile,
        schedule=s.schedule,
        optimizer=s.optimizer,
        beta2=s.adam_beta2,
    )


def estimate_seconds(ctx: RunContext, base: Base, train: Blocks, plan: Plan) -> float:
    """Seconds the training steps would take here: one micro-step timed after a warm-up."""
    return micro_step_seconds(ctx, base, train, plan.bf16) * plan.grad_accum * plan.total_steps


def micro_step_seconds(ctx: RunContext, base: Base, train: Blocks, bf16: bool) -> float:
    """One training micro-step (forward and backward of --batch-size blocks) timed here: the
    median of up to MEASURE_STEPS after a warm-up, as many as fit MEASURE_SECONDS (the typical
    step, not the luckiest). Timed once per run; the dry run's estimate reuses it."""
    if ctx.step_seconds is not None:
        return ctx.step_seconds
    device = ctx.dist.device
    model = base.start_model().module.to(device).train()
    batch = ctx.settings.batch_size
    ids, mask = (t.to(device) for t in (train.ids[:batch], train.mask[:batch]))
    timings: list[float] = []
    began = time.perf_counter()
    for _ in range(MEASURE_STEPS + 1):
        start = time.perf_counter()
        token_loss_sum(model, ids, mask, bf16).backward()
        timings.append(time.perf_counter() - start)
        if len(timings) >= 2 and time.perf_counter() - began > MEASURE_SECONDS:
            break
    model.zero_grad(set_to_none=True)
    ctx.step_seconds = statistics.median(timings[1:])  # the first is the warm-up
    return ctx.step_seconds


def _fitted_epochs(ctx: RunContext, base: Base, train: Blocks, bf16: bool) -> float | None:
    """The default epochs fitted into --minutes at the speed measured here, said in a line;
    a resumed run keeps the epochs it started with. None where it cannot measure (several
    processes, whose timings would differ): the table's rough speed decides."""
    s, saved = ctx.settings, ctx.run_dir / PLAN
    if s.resume and saved.exists():
        return float(json.loads(saved.read_text(encoding="utf-8"))["epochs"])
    if ctx.dist.active:
        return None
    seconds = micro_step_seconds(ctx, base, train, bf16)
    batch = s.batch_size
    epoch_seconds = seconds * math.ceil(len(train) / batch)
    epochs = defaults.fitted_epochs(train.targets, epoch_seconds, s.minutes)
    speed = batch * train.ids.shape[1] / seconds
    total = epochs * epoch_seconds / defaults.TRAIN_SHARE / 60
    ctx.emit(
        Stage(
            f"measured {speed:,.0f} tok/s: training {epochs:g} epochs to finish in about "
            f"{total:.1f} minutes (--minutes {s.minutes:g})"
        )
    )
    if ctx.writes:
        atomic_write(saved, json.dumps({"epochs": epochs, "tokens_per_s": speed}))
    return epochs

"""The training plan (steps, batch, learning rate, schedule) and the dry run's time estimate."""

from __future__ import annotations

import math
import time

from scribe.engine.finetune import defaults, hardware
from scribe.engine.finetune.base import Base
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.tokens import Blocks
from scribe.engine.finetune.trainer import Plan, token_loss_sum


def make_plan(ctx: RunContext, train: Blocks, params: int) -> Plan:
    """The flags where given, else defaults that fit the base's size and the data's."""
    s, d = ctx.settings, ctx.dist
    # --max-steps sets the length itself: no epochs to choose (1.0 keeps them out of the note).
    epochs = 1.0 if s.max_steps is not None else s.epochs
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
        bf16=hardware.bf16_native(d.device) if s.bf16 is None else s.bf16,
        compile=s.compile,
        schedule=s.schedule,
        optimizer=s.optimizer,
        beta2=s.adam_beta2,
    )


def estimate_seconds(ctx: RunContext, base: Base, train: Blocks, plan: Plan) -> float:
    """Seconds the training steps would take here: one micro-step timed after a warm-up."""
    device = ctx.dist.device
    model = base.start_model().module.to(device).train()
    rows = train.ids[: plan.micro_batch], train.mask[: plan.micro_batch]
    ids, mask = (t.to(device) for t in rows)
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        token_loss_sum(model, ids, mask, plan.bf16).backward()
        timings.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return timings[-1] * plan.grad_accum * plan.total_steps

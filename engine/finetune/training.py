"""The training stage: the method applied to the start model, threads chosen, then trained."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from scribe.engine.errors import InputError
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune import hardware
from scribe.engine.finetune.base import StartModel
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.dataset import TrainingSet
from scribe.engine.finetune.events import Stage, TrainStart
from scribe.engine.finetune.interrupt import StopFlag
from scribe.engine.finetune.tokens import Blocks
from scribe.engine.finetune.trainer import Plan, Trainer, TrainOutcome, token_loss_sum

THREADS = "threads.json"  # in the run folder: a resumed run keeps its thread count

Sampler = Callable[[Any], list[tuple[str, str]]]  # model -> (prompt, continuation) pairs


@dataclass(frozen=True)
class Trained:
    """The training stage's value: the trained model and how its training went."""

    model: Any  # the start model with the method applied (a LoRA or prefix wrapper), trained
    outcome: TrainOutcome
    threads: int  # the CPU threads it trained with, which the card records


def train(
    ctx: RunContext, start: StartModel, data: TrainingSet, plan: Plan, sampler: Sampler | None
) -> Trained:
    """Apply --method to `start` and train it by `plan`, from the newest checkpoint on --resume."""
    from scribe.engine.finetune.methods import prepare

    s, dist = ctx.settings, ctx.dist
    init_ids = data.train.ids[0, : s.prefix_tokens].tolist()
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        model = prepare(start.module, s.method, s, init_ids)
    model.to(dist.device).train()
    threads = _threads(ctx, model, data.train, plan)
    stop = StopFlag()
    trainer = Trainer(
        model,
        plan,
        data.train,
        data.val,
        ctx.run_dir,
        dist,
        ctx.emit,
        sampler=sampler,
        stop_requested=stop.is_set,
    )
    # Dropout draws from the global RNG: seed it, so a run is a function of its settings
    # (a resumed run restores the RNG state saved with its checkpoint instead).
    torch.manual_seed(s.seed * 1000 + dist.rank)
    if s.resume and ckpt.list_checkpoints(ctx.run_dir):
        _resume(ctx, trainer)
    elif s.resume:
        ctx.emit(Stage("no checkpoint was saved before the run stopped: starting at step 0"))
    ctx.emit(
        TrainStart(
            plan.total_steps,
            trainer.state.step,
            trainer.global_batch * data.block_size,
            threads,
            plan.bf16,
            dist.world,
            str(dist.device),
        )
    )
    with stop.installed():
        outcome = trainer.run()
    return Trained(model, outcome, threads)


def _resume(ctx: RunContext, trainer: Trainer) -> None:
    """Continue from the newest intact checkpoint; a damaged one (a kill mid-write on a
    filesystem without atomic rename, a bad disk) is passed over and named."""
    damaged: list[str] = []
    for partial in ckpt.partial_checkpoints(ctx.run_dir):
        damaged.append(f"{partial.name.split('.part-')[0].lstrip('.')} (cut off mid-write)")
        if ctx.dist.main:
            shutil.rmtree(partial, ignore_errors=True)
    for checkpoint in reversed(ckpt.list_checkpoints(ctx.run_dir)):
        try:
            trainer.resume(checkpoint)
        except Exception as err:  # noqa: BLE001 - any unreadable piece means "damaged"
            damaged.append(f"{checkpoint.name} ({type(err).__name__})")
            continue
        if damaged:
            gone = ", ".join(damaged)
            ctx.emit(Stage(f"checkpoint {gone} is damaged; resuming from an earlier one"))
        ctx.emit(Stage(f"resuming from step {trainer.state.step} (checkpoint {checkpoint.name})"))
        return
    raise InputError(
        f"{ckpt.checkpoint_dir(ctx.run_dir)}: no intact checkpoint to resume from "
        f"({', '.join(damaged)}); start again with --overwrite"
    )


def _threads(ctx: RunContext, model: Any, train: Blocks, plan: Plan) -> int:
    """--threads, else the count this run started with, else the fastest measured here."""
    s, d = ctx.settings, ctx.dist
    saved = ctx.run_dir / THREADS
    if s.threads:
        threads = s.threads
    elif saved.exists():  # same thread count, same arithmetic, same result
        threads = int(json.loads(saved.read_text(encoding="utf-8"))["threads"])
    elif d.device.type != "cpu" or d.active:
        threads = hardware.usable_cores(d.local_world)
    else:
        ids, mask = train.ids[: plan.micro_batch], train.mask[: plan.micro_batch]

        def trial() -> None:
            token_loss_sum(model, ids, mask, plan.bf16).backward()
            model.zero_grad(set_to_none=True)

        ctx.emit(Stage("measuring the fastest thread count"))
        threads = hardware.choose_threads(hardware.usable_cores(), trial)
    torch.set_num_threads(threads)
    if d.main:
        saved.write_text(json.dumps({"threads": threads}), encoding="utf-8")
    return threads

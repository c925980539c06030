"""The training stage: the method applied to the base, threads chosen, trained, compared, saved."""

from __future__ import annotations

import json
from typing import Any

import torch

from scribe.engine.errors import InputError
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune import distributed, hardware
from scribe.engine.finetune.base import Base, model_shape
from scribe.engine.finetune.before_after import Comparison
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.events import Stage, TrainStart
from scribe.engine.finetune.interrupt import StopFlag
from scribe.engine.finetune.result import FinetuneResult
from scribe.engine.finetune.save import save_result
from scribe.engine.finetune.splits import Split
from scribe.engine.finetune.tokens import Blocks
from scribe.engine.finetune.trainer import Plan, Trainer, token_loss_sum
from scribe.engine.prompting.chat_format import ChatFormat

THREADS = "threads.json"  # in the run folder: a resumed run keeps its thread count


def train(
    ctx: RunContext,
    result: FinetuneResult,
    split: Split,
    base: Base,
    blocks: dict[str, Blocks],
    plan: Plan,
    chat: ChatFormat,
) -> FinetuneResult:
    from scribe.engine.finetune.methods import prepare

    s, d = ctx.settings, ctx.d
    start = base.model()
    start.module.to(d.device)
    shape = model_shape(start.module)
    compare = Comparison.for_run(ctx, split, base.tokenizer, blocks["test"], plan.bf16)
    result.prompts = compare.prompts
    result.before, result.samples_before = compare.before(start.module)

    init_ids = blocks["train"].ids[0, : s.prefix_tokens].tolist()
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        model = prepare(start.module, s.method, s, init_ids)
    model.to(d.device).train()
    threads = _threads(ctx, model, blocks["train"], plan)
    stop = StopFlag()
    trainer = Trainer(
        model,
        plan,
        blocks["train"],
        blocks["val"],
        ctx.run_dir,
        d,
        ctx.emit,
        sampler=compare.samples if compare.prompts else None,
        stop_requested=stop.is_set,
    )
    # Dropout draws from the global RNG: seed it, so a run is a function of its settings
    # (a resumed run restores the RNG state saved with its checkpoint instead).
    torch.manual_seed(s.seed * 1000 + d.rank)
    if s.resume and ckpt.list_checkpoints(ctx.run_dir):
        _resume(ctx, trainer)
    block = blocks["train"].ids.shape[1]
    ctx.emit(
        TrainStart(
            plan.total_steps,
            trainer.state.step,
            trainer.global_batch * block,
            threads,
            plan.bf16,
            d.world,
            str(d.device),
        )
    )
    with stop.installed():
        result.outcome = trainer.run()

    result.after, result.samples_after = compare.after(model)
    if d.main:
        save_result(ctx, result, model, base.tokenizer, start, shape, plan, threads, chat, split)
    distributed.barrier(d)
    return result


def _resume(ctx: RunContext, trainer: Trainer) -> None:
    """Continue from the newest intact checkpoint; a damaged one (a kill mid-write on a
    filesystem without atomic rename, a bad disk) is passed over and named."""
    damaged: list[str] = []
    for checkpoint in reversed(ckpt.list_checkpoints(ctx.run_dir)):
        try:
            trainer.resume(checkpoint)
        except Exception as err:  # noqa: BLE001 - any unreadable piece means "damaged"
            damaged.append(f"{checkpoint.name} ({type(err).__name__})")
            continue
        if damaged:
            gone = ", ".join(damaged)
            ctx.emit(Stage(f"checkpoint {gone} is damaged; resuming from an earlier one"))
        ctx.emit(Stage(f"resuming from step {trainer.state.step}"))
        return
    raise InputError(
        f"{ckpt.checkpoint_dir(ctx.run_dir)}: no intact checkpoint to resume from "
        f"({', '.join(damaged)}); start again with --overwrite"
    )


def _threads(ctx: RunContext, model: Any, train: Blocks, plan: Plan) -> int:
    """--threads, else the count this run started with, else the fastest measured here."""
    s, d = ctx.settings, ctx.d
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

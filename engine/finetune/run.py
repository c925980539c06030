"""One fine-tuning run from start to finish: the stages in order, each returning a typed value
the later ones take. See __init__.py for the overview."""

from __future__ import annotations

import errno

from scribe.engine.errors import InputError
from scribe.engine.finetune import distributed
from scribe.engine.finetune.base import Base, load_base
from scribe.engine.finetune.before_after import BeforeAfter, Comparison
from scribe.engine.finetune.context import RunContext, create_run, open_run
from scribe.engine.finetune.dataset import TrainingSet, example, read_data, training_set
from scribe.engine.finetune.events import DataReady, EventSink, ignore
from scribe.engine.finetune.planning import estimate_seconds, make_plan
from scribe.engine.finetune.result import DryRun, Finetuned, FinetuneResult
from scribe.engine.finetune.settings import FinetuneSettings
from scribe.engine.finetune.trainer import Plan

__all__ = ["DryRun", "FinetuneResult", "Finetuned", "run_finetune"]

# What a full disk or a read-only folder raises: one line saying how to continue.
UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def run_finetune(settings: FinetuneSettings, on_event: EventSink | None = None) -> FinetuneResult:
    settings.check()
    dist = distributed.setup()
    try:
        return _run(open_run(settings, on_event or ignore, dist))
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # Checkpoints are written atomically, so the last complete one is intact.
        raise InputError(
            f"cannot write {err.filename or 'the run folder'}: {err.strerror}; free space (or "
            "fix the permissions) and continue with the same command plus --resume"
        ) from None
    finally:
        distributed.teardown(dist)


def _run(ctx: RunContext) -> FinetuneResult:
    if ctx.writes and not ctx.settings.resume:
        ctx.on_main(lambda: create_run(ctx))
    docs = read_data(ctx)  # the documents, read and split
    base = load_base(ctx, docs.split)  # the base model (or a new one's blueprint) and tokenizer
    data = training_set(ctx, docs, base)  # tokenized and packed into blocks
    plan = make_plan(ctx, data.train, base.parameters)  # steps, batch, learning rate
    ctx.emit(DataReady(data.summary))
    if ctx.settings.dry_run:
        return _dry_run(ctx, base, data, plan)
    return _finetune(ctx, base, data, plan)


def _dry_run(ctx: RunContext, base: Base, data: TrainingSet, plan: Plan) -> DryRun:
    """The plan with its size and estimated time here; nothing trained, nothing written."""
    tokens = plan.total_steps * plan.micro_batch * plan.grad_accum * data.block_size
    seconds = estimate_seconds(ctx, base, data.train, plan)
    return DryRun(ctx.out, data.summary, plan, tokens, seconds, example(data.split, base.tokenizer))


def _finetune(ctx: RunContext, base: Base, data: TrainingSet, plan: Plan) -> Finetuned:
    """The base evaluated, trained, the trained model evaluated, then saved (by rank 0)."""
    from scribe.engine.finetune.save import save_model
    from scribe.engine.finetune.training import train

    start = base.start_model()
    start.module.to(ctx.dist.device)
    compare = Comparison.for_run(ctx, data, base.tokenizer, plan.bf16)
    before = compare.before(start.module)
    trained = train(ctx, start, data, plan, compare.sampler())
    scores = BeforeAfter(compare.prompts, before, compare.after(trained.model))
    saved = None
    if ctx.dist.main:
        saved = save_model(ctx, start, base.tokenizer, data, plan, trained, scores)
    distributed.barrier(ctx.dist)
    return Finetuned(ctx.out, data.summary, plan, trained.outcome, scores, saved)

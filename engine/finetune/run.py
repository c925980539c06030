"""One fine-tuning run from start to finish: the stages in order, each returning a typed value
the later ones take. See __init__.py for the overview."""

from __future__ import annotations

import errno
import os
import re

from scribe.engine.errors import InputError
from scribe.engine.finetune import distributed, outdir
from scribe.engine.finetune.base import Base, load_base
from scribe.engine.finetune.before_after import BeforeAfter, Comparison
from scribe.engine.finetune.context import RunContext, create_run, open_run
from scribe.engine.finetune.dataset import TrainingSet, example, read_data, training_set
from scribe.engine.finetune.events import DataReady, EventSink, Stage, ignore
from scribe.engine.finetune.planning import estimate_seconds, make_plan
from scribe.engine.finetune.result import DryRun, Finetuned, FinetuneResult
from scribe.engine.finetune.settings import FinetuneSettings
from scribe.engine.finetune.trainer import Plan

__all__ = ["DryRun", "FinetuneResult", "Finetuned", "run_finetune"]

# What a full disk or a read-only folder raises: one line saying how to continue.
UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EFBIG)
OS_ERROR = re.compile(r"\(os error (\d+)\)")


def run_finetune(settings: FinetuneSettings, on_event: EventSink | None = None) -> FinetuneResult:
    settings.check()
    dist = distributed.setup()
    ctx = None
    try:
        ctx = open_run(settings, on_event or ignore, dist)
        try:
            return _run(ctx)
        except BaseException:
            if ctx.writes and ctx.dist.main and outdir.restore_replaced(ctx.out):
                ctx.emit(Stage(f"the run failed before its first checkpoint: {ctx.out} is back"))
            raise
    except Exception as err:
        code = _write_errno(err)
        if code not in UNWRITABLE:
            raise
        # Checkpoints are written atomically, so the last complete one is intact.
        where = getattr(err, "filename", None) or "the run folder"
        raise InputError(
            f"cannot write {where}: {os.strerror(code)}; free space (or fix the permissions) "
            "and continue with the same command plus --resume"
        ) from None
    finally:
        if ctx is not None and ctx.lock is not None:
            ctx.lock.release()
        distributed.teardown(dist)


def _write_errno(err: Exception) -> int | None:
    """The errno of a failed write: an OSError's, or the one safetensors (which raises its own
    error type) names as "(os error N)"."""
    if isinstance(err, OSError):
        return err.errno
    if type(err).__name__ == "SafetensorError" and (found := OS_ERROR.search(str(err))):
        return int(found[1])
    return None


def _run(ctx: RunContext) -> FinetuneResult:
    fresh = ctx.writes and not ctx.settings.resume
    docs = read_data(ctx)  # the documents, read and split
    # The run folder is made (and an --overwrite'n model replaced) only once the data is read
    # and the base loaded, so a mistyped DATA or --model destroys nothing. A new model's
    # tokenizer is trained into the run folder, so --from-scratch makes it first.
    if fresh and ctx.settings.from_scratch:
        ctx.on_main(lambda: create_run(ctx))
    base = load_base(ctx, docs.split)  # the base model (or a new one's blueprint) and tokenizer
    if fresh and not ctx.settings.from_scratch:
        ctx.on_main(lambda: create_run(ctx))
    data = training_set(ctx, docs, base)  # tokenized and packed into blocks
    plan = make_plan(ctx, data.train, base)  # steps, batch, learning rate
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

"""One fine-tuning run from start to finish, stage by stage; see __init__.py for the overview."""

from __future__ import annotations

import errno
from dataclasses import asdict

from scribe.engine.errors import InputError
from scribe.engine.finetune import distributed, fim
from scribe.engine.finetune.base import prepare_base
from scribe.engine.finetune.context import RunContext, create_run, open_run
from scribe.engine.finetune.data import find_files, read_documents
from scribe.engine.finetune.dataset import example, packed, tokenized
from scribe.engine.finetune.events import DataReady, EventSink, Stage, ignore
from scribe.engine.finetune.planning import estimate_seconds, make_plan
from scribe.engine.finetune.result import FinetuneResult
from scribe.engine.finetune.settings import DEFAULT_BLOCK, FinetuneSettings
from scribe.engine.finetune.splits import Split, split_documents
from scribe.engine.prompting.chat_format import ChatFormat

__all__ = ["FinetuneResult", "run_finetune"]

# What a full disk or a read-only folder raises: one line saying how to continue.
UNWRITABLE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def run_finetune(settings: FinetuneSettings, on_event: EventSink | None = None) -> FinetuneResult:
    settings.check()
    d = distributed.setup()
    try:
        return _run(open_run(settings, on_event or ignore, d))
    except OSError as err:
        if err.errno not in UNWRITABLE:
            raise
        # Checkpoints are written atomically, so the last complete one is intact.
        raise InputError(
            f"cannot write {err.filename or 'the run folder'}: {err.strerror}; free space (or "
            "fix the permissions) and continue with the same command plus --resume"
        ) from None
    finally:
        distributed.teardown(d)


def _run(ctx: RunContext) -> FinetuneResult:
    s = ctx.settings
    if ctx.writes and not s.resume:
        ctx.on_main(lambda: create_run(ctx))
    ctx.emit(Stage("reading data"))
    files = find_files(s.data)
    chat = ChatFormat.from_template(s.chat_template)
    split = split_documents(read_documents(files, chat), s.val_fraction, s.test_fraction, s.seed)
    base = prepare_base(ctx, split)
    n_positions = base.n_positions
    block = s.block_size or min(n_positions, DEFAULT_BLOCK)
    if block > n_positions:
        raise InputError(f"--block-size {block} is more than the model's {n_positions} positions")
    if s.fim:
        eot = base.tokenizer.eos_token
        split = Split(fim.apply(split.train, s.fim, s.seed, block, eot), split.val, split.test)
    tokens, summary = tokenized(ctx, files, split, base.tokenizer, chat)
    blocks = packed(tokens, block, base.tokenizer.eos_token_id, summary)
    plan = make_plan(ctx, blocks["train"], base.parameters)
    ctx.emit(DataReady(summary))
    result = FinetuneResult(ctx.out, s, summary, plan=asdict(plan), dry_run=s.dry_run)
    result.example = example(split, base.tokenizer)
    if s.dry_run:
        result.plan["tokens"] = plan.total_steps * plan.micro_batch * plan.grad_accum * block
        result.plan["estimated_seconds"] = estimate_seconds(ctx, base, blocks["train"], plan)
        return result
    from scribe.engine.finetune.training import train

    return train(ctx, result, split, base, blocks, plan, chat)

"""Saving a finished run: model files, card and report staged, then installed into --out."""

from __future__ import annotations

import shutil
from typing import Any

from scribe.engine.finetune import card as cards
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune import fim, outdir, report
from scribe.engine.finetune.base import StartModel
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.result import FinetuneResult
from scribe.engine.finetune.splits import Split
from scribe.engine.finetune.tokens import CACHE_FILE, CACHE_META
from scribe.engine.finetune.trainer import Plan
from scribe.engine.prompting.chat_format import ChatFormat


def save_result(
    ctx: RunContext,
    result: FinetuneResult,
    model: Any,
    tokenizer: Any,
    start: StartModel,
    shape: dict[str, Any],
    plan: Plan,
    threads: int,
    chat: ChatFormat,
    split: Split,
) -> None:
    """Write the model with its card and report (rank 0 only); `result` gets both."""
    from scribe.engine.finetune.methods import install, save_output

    s = ctx.settings
    outcome = result.outcome
    assert outcome is not None
    ctx.emit(Stage(f"saving the model to {ctx.out}"))
    staging = ctx.out / outdir.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    output = save_output(model, tokenizer, s.method, s.merge, start.path, staging, s.save_dtype)
    training = {
        "steps": outcome.steps,
        "planned_steps": plan.total_steps,
        "reason": outcome.reason,
        "best_step": outcome.best_step,
        "best_val_loss": outcome.best_val_loss,
        "final_val_loss": outcome.final_val_loss,
        "tokens_per_s": outcome.tokens_per_s,
        "train_seconds": outcome.train_seconds,
        "trained_tokens": outcome.trained_tokens,
        "block_size": result.summary["block_size"],
        "global_batch": plan.micro_batch * plan.grad_accum * ctx.d.world,
        "lr": plan.lr,
        "seed": s.seed,
        "threads": threads,
        "bf16": plan.bf16,
        "world_size": ctx.d.world,
        "save_dtype": s.save_dtype,
    }
    uses_chat = any(doc.kind == "chat" for part in split.parts().values() for doc in part)
    card = cards.build_card(
        settings=s,
        base_model=start.name,
        shape=shape,
        data=result.summary,
        before=result.before,
        after=result.after,
        training=training,
        output=output,
        chat=chat.as_dict() if uses_chat else None,
    )
    # the fixed-prompt samples belong in the card too, not only the report.
    card["samples"] = [
        {"prompt": prompt, "before": before, "after": after}
        for prompt, before, after in zip(
            result.prompts, result.samples_before, result.samples_after, strict=False
        )
    ]
    if s.fim:
        card["fim"] = fim.card_entry(s.fim)
    cards.write_card(staging, card)
    text = report.render(
        card, ctx.out.name, result.prompts, result.samples_before, result.samples_after
    )
    (staging / "report.md").write_text(text, encoding="utf-8")
    install(staging, ctx.out)
    # The checkpoints and token cache are only needed to resume; the run is complete.
    shutil.rmtree(ckpt.checkpoint_dir(ctx.run_dir), ignore_errors=True)
    for name in (CACHE_FILE, CACHE_META):
        (ctx.run_dir / name).unlink(missing_ok=True)
    result.card = card
    result.report = ctx.out / "report.md"

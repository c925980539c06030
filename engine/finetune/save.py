"""The saving stage: model files, card and report staged, then installed into --out."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scribe.engine.finetune import card as cards
from scribe.engine.finetune import checkpoints as ckpt
from scribe.engine.finetune import fim, outdir, report
from scribe.engine.finetune.base import StartModel
from scribe.engine.finetune.before_after import BeforeAfter
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.dataset import TrainingSet
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.tokens import CACHE_FILE, CACHE_META
from scribe.engine.finetune.trainer import Plan
from scribe.engine.finetune.training import Trained
from scribe.engine.runtime.model_card import write_card

REPORT = "report.md"


@dataclass(frozen=True)
class SavedModel:
    """The saving stage's value: what was written into --out."""

    card: dict[str, Any]  # the scribe.json card as written
    report: Path


def save_model(
    ctx: RunContext,
    start: StartModel,
    tokenizer: Any,
    data: TrainingSet,
    plan: Plan,
    trained: Trained,
    scores: BeforeAfter,
) -> SavedModel:
    """Write the trained model with its card and report into --out (rank 0 only), then drop
    what only a --resume needed."""
    from scribe.engine.finetune.methods import install

    ctx.emit(Stage(f"saving the model to {ctx.out}"))
    staging = ctx.out / outdir.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        card = _stage(ctx, start, tokenizer, data, plan, trained, scores, staging)
    except BaseException:
        # A full disk mid-save: free what was staged; the checkpoints stay for --resume.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    install(staging, ctx.out)
    outdir.drop_replaced(ctx.out)
    # The checkpoints and token cache are only needed to resume; the run is complete.
    shutil.rmtree(ckpt.checkpoint_dir(ctx.run_dir), ignore_errors=True)
    for name in (CACHE_FILE, CACHE_META):
        (ctx.run_dir / name).unlink(missing_ok=True)
    return SavedModel(card, ctx.out / REPORT)


def _stage(
    ctx: RunContext,
    start: StartModel,
    tokenizer: Any,
    data: TrainingSet,
    plan: Plan,
    trained: Trained,
    scores: BeforeAfter,
    staging: Path,
) -> dict[str, Any]:
    """The model files, card and report written into `staging`; returns the card."""
    from scribe.engine.finetune.methods import save_output

    s, outcome = ctx.settings, trained.outcome
    output = save_output(
        trained.model, tokenizer, s.method, s.merge, start.path, staging, s.save_dtype
    )
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
        "block_size": data.block_size,
        "global_batch": plan.micro_batch * plan.grad_accum * ctx.dist.world,
        "lr": plan.lr,
        "seed": s.seed,
        "threads": trained.threads,
        "bf16": plan.bf16,
        "world_size": ctx.dist.world,
        "save_dtype": s.save_dtype,
    }
    card = cards.build_card(
        settings=s,
        base_model=start.name,
        shape=start.shape,
        data=data.summary,
        before=scores.before.metrics,
        after=scores.after.metrics,
        training=training,
        output=output,
        chat=data.chat.as_dict() if data.uses_chat else None,
    )
    # the fixed-prompt samples belong in the card too, not only the report.
    card["samples"] = [
        {"prompt": prompt, "before": before, "after": after}
        for prompt, before, after in zip(
            scores.prompts, scores.before.samples, scores.after.samples, strict=False
        )
    ]
    if s.fim:
        card["fim"] = fim.card_entry(s.fim)
    write_card(staging, card)
    (staging / REPORT).write_text(report.render(card, ctx.out.name, scores), encoding="utf-8")
    return card

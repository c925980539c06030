"""The test-split comparison: the untouched base model before training, the trained one after."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from scribe.engine.files.atomic import atomic_path
from scribe.engine.finetune.context import RunContext
from scribe.engine.finetune.dataset import TrainingSet
from scribe.engine.finetune.evaluation import (
    SAMPLE_TOKENS,
    EngineGenerator,
    Evaluation,
    default_prompts,
    evaluate,
    pair_examples,
)
from scribe.engine.finetune.events import Stage
from scribe.engine.finetune.tokens import Blocks

BEFORE = "before.json"  # in the run folder: a resumed run does not evaluate the base again


@dataclass(frozen=True)
class Measured:
    """One model on the test split: its figures (keys as report.METRICS names them) and its
    greedy continuation of each fixed prompt."""

    metrics: dict[str, Any]
    samples: list[str]


@dataclass(frozen=True)
class BeforeAfter:
    """The evaluation stage's value: the base model and the trained one, on the same prompts."""

    prompts: list[str]
    before: Measured
    after: Measured


@dataclass(frozen=True)
class Comparison:
    ctx: RunContext
    tokenizer: Any
    test: Blocks
    prompts: list[str]  # fixed prompts, sampled greedily before, during and after training
    pairs: list[tuple[str, str]]  # test (prompt, completion) pairs for BLEU and ROUGE
    bf16: bool

    @classmethod
    def for_run(cls, ctx: RunContext, data: TrainingSet, tokenizer: Any, bf16: bool) -> Comparison:
        s, split = ctx.settings, data.split
        prompts = s.sample_prompts or default_prompts(split.test or split.val or split.train)
        pairs = pair_examples(split.test, s.eval_examples)
        return cls(ctx, tokenizer, data.test, prompts, pairs, bf16)

    def before(self, base_model: Any) -> Measured:
        """Metrics and samples of the base model (a LoRA or prefix wrapper is not added yet)."""
        path = self.ctx.run_dir / BEFORE
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
        else:
            self.ctx.emit(Stage("evaluating the base model on the test split"))
            ev = self._evaluate(base_model)
            saved = {"metrics": ev.as_dict(), "samples": ev.samples}
            if self.ctx.dist.main:
                with atomic_path(path) as tmp:
                    tmp.write_text(json.dumps(saved), encoding="utf-8")
        return Measured(saved["metrics"], saved["samples"])

    def after(self, model: Any) -> Measured:
        """Metrics and samples of the trained model."""
        self.ctx.emit(Stage("evaluating the trained model on the test split"))
        ev = self._evaluate(model)
        return Measured(ev.as_dict(), ev.samples)

    def sampler(self) -> Callable[[Any], list[tuple[str, str]]] | None:
        """What the trainer calls for its progress samples; None when there is no prompt."""
        return self.samples if self.prompts else None

    def samples(self, model: Any) -> list[tuple[str, str]]:
        """(prompt, greedy continuation) for each fixed prompt: the trainer's progress samples."""
        gen = EngineGenerator(model, self.tokenizer)
        with torch.no_grad():
            return [(p, gen.complete(p, SAMPLE_TOKENS)) for p in self.prompts]

    def _evaluate(self, model: Any) -> Evaluation:
        s = self.ctx.settings
        return evaluate(
            model,
            self.tokenizer,
            self.test,
            self.prompts,
            self.pairs,
            s.batch_size,
            self.ctx.dist,
            self.bf16,
        )

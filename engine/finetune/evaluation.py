"""Before/after evaluation on the test split: perplexity; BLEU and ROUGE for prompt/completion
data; greedy samples from fixed prompts. Generation goes through scribe's own engine, so what is
measured is what `scribe complete` will do."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scribe.engine.finetune.distributed import Dist
from scribe.engine.finetune.tokens import Blocks
from scribe.engine.finetune.trainer import evaluate_loss

SAMPLE_TOKENS = 40
PROMPT_WORDS = 12


@dataclass
class Evaluation:
    test_loss: float | None = None
    perplexity: float | None = None
    bleu: float | None = None
    rouge: dict[str, float] = field(default_factory=dict)  # rouge1/rouge2/rougeL F1, in percent
    samples: list[str] = field(default_factory=list)  # one continuation per fixed prompt

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"test_loss": self.test_loss, "perplexity": self.perplexity}
        if self.bleu is not None:
            out["bleu"] = self.bleu
            out.update({k: v for k, v in self.rouge.items()})
        return out


def perplexity(
    model: Any, blocks: Blocks, batch: int, d: Dist, bf16: bool
) -> tuple[float | None, float | None]:
    if len(blocks) == 0 or blocks.targets == 0:
        return None, None
    loss = evaluate_loss(model, blocks, batch, d, bf16)
    return loss, math.exp(min(loss, 50.0))


class EngineGenerator:
    """Greedy generation through scribe's engine (runtime/generation.py) for an in-memory model,
    on whatever device it is being trained on."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        from scribe.engine.runtime.generation import Generator
        from scribe.engine.runtime.models import LoadedModel

        self.model = model
        self.generator = Generator(LoadedModel("training", Path("."), model, tokenizer))

    def complete(self, prompt: str, max_new_tokens: int) -> str:
        from scribe.engine.runtime.options import GenerationOptions

        options = GenerationOptions(max_new_tokens=max_new_tokens, temperature=0.0)
        was_training = self.model.training
        self.model.eval()
        try:
            return self.generator.stream(prompt, options).text()
        finally:
            self.model.train(was_training)


def default_prompts(docs: list[Any], count: int = 2) -> list[str]:
    """Fixed prompts: the opening words of the first test documents (or their prompts)."""
    prompts = []
    for doc in docs[:count]:
        first = doc.segments[0]
        if doc.kind == "text":
            text = _opening(first.text)
        else:
            text = "".join(s.text for s in doc.segments[: _first_trainable(doc)])
        if text.strip():
            prompts.append(text)
    return prompts


def _opening(text: str) -> str:
    """The document's first sentence or line, cut back to a word boundary when it is long, so
    a sample starts where a reader would and not mid-phrase."""
    line = next((ln.strip() for ln in text.splitlines() if len(ln.split()) >= 3), text.strip())
    words = line.split()
    for i, word in enumerate(words[: PROMPT_WORDS * 2]):
        if i + 1 >= 4 and word.endswith((".", ":", "?", "!")):
            return " ".join(words[: i + 1])  # a whole first sentence
    return " ".join(words[:PROMPT_WORDS])


def _first_trainable(doc: Any) -> int:
    for i, seg in enumerate(doc.segments):
        if seg.trainable:
            return i
    return len(doc.segments)


def pair_examples(docs: list[Any], limit: int) -> list[tuple[str, str]]:
    """(prompt, reference completion) of the first `limit` prompt/completion test documents."""
    pairs = []
    for doc in docs:
        if doc.kind == "pair":
            prompt = "".join(s.text for s in doc.segments if not s.trainable)
            reference = "".join(s.text for s in doc.segments if s.trainable)
            pairs.append((prompt, reference))
        if len(pairs) >= limit:
            break
    return pairs


def bleu_rouge(
    gen: EngineGenerator, pairs: list[tuple[str, str]], tokenizer: Any
) -> tuple[float, dict[str, float]]:
    import sacrebleu
    from rouge_score import rouge_scorer

    hypotheses, references = [], []
    for prompt, reference in pairs:
        budget = min(256, max(16, len(tokenizer.encode(reference)) * 3 // 2 + 8))
        hypotheses.append(gen.complete(prompt, budget).strip())
        references.append(reference.strip())
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for hyp, ref in zip(hypotheses, references, strict=True):
        for key, score in scorer.score(ref, hyp).items():
            totals[key] += score.fmeasure
    return bleu, {k: 100 * v / len(pairs) for k, v in totals.items()}


def evaluate(
    model: Any,
    tokenizer: Any,
    test: Blocks,
    prompts: list[str],
    pairs: list[tuple[str, str]],
    batch: int,
    d: Dist,
    bf16: bool,
) -> Evaluation:
    result = Evaluation()
    result.test_loss, result.perplexity = perplexity(model, test, batch, d, bf16)
    if d.main and (prompts or pairs):
        gen = EngineGenerator(model, tokenizer)
        with torch.no_grad():
            result.samples = [gen.complete(p, SAMPLE_TOKENS) for p in prompts]
            if pairs:
                result.bleu, result.rouge = bleu_rouge(gen, pairs, tokenizer)
    return result

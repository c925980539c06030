"""Choosing the next token from logits, in torch, on the last position only."""

from __future__ import annotations

import torch

from scribe.engine.runtime.options import GenerationOptions


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> None:
    """transformers' formula, in place: divide positive scores, multiply negative ones."""
    if penalty == 1.0 or seen.numel() == 0:
        return
    scores = logits.gather(0, seen)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    logits.scatter_(0, seen, scores)


def choose_token(
    logits: torch.Tensor,
    options: GenerationOptions,
    seen: torch.Tensor,
    generator: torch.Generator | None,
) -> int:
    """Pick one token id from a 1-D logits vector (modified in place)."""
    logits = logits.to(torch.float32, copy=True)  # inference tensors cannot be edited in place
    apply_repetition_penalty(logits, seen, options.repetition_penalty)
    if options.temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / options.temperature
    if options.top_k and options.top_k < logits.numel():
        kth = torch.topk(logits, options.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if options.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # Drop tokens once the mass before them already reaches top_p; always keep the best.
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= options.top_p
        drop[0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))

"""Choosing the next token from logits, in numpy, on the last position only: the one sampler every
backend's logits go through.

Two guards keep a small model from looping: a DRY ("don't repeat yourself") penalty that grows
with the length of a sequence the reply is about to repeat from itself, and a repetition penalty
over a recent window. DRY only counts repeats of what the model generated (a match may reach back
into the prompt, but the repeated continuation must be the model's own), so quoting the input, as
fix-grammar and rewrite must, is never penalised.
"""

from __future__ import annotations

import math

import numpy as np

from scribe.engine.runtime.options import GenerationOptions

# A match longer than this is penalised as if it were this long (base ** length overflows).
DRY_MAX_MATCH = 32


def apply_repetition_penalty(logits: np.ndarray, seen: np.ndarray, penalty: float) -> None:
    """transformers' formula, in place: divide positive scores, multiply negative ones."""
    if penalty == 1.0 or seen.size == 0:
        return
    scores = logits[seen]
    logits[seen] = np.where(scores < 0, scores * penalty, scores / penalty)


def dry_penalties(
    tokens: list[int], first_generated: int, options: GenerationOptions
) -> dict[int, float]:
    """{token: penalty} for each token that would extend a repeat of the model's own output.

    For every earlier position j (j >= first_generated) whose preceding tokens end like the text
    does now, seq[j] is the token that would repeat; its match length k is how many tokens
    before j equal the last k tokens. A match of k >= dry_allowed_length costs
    dry_multiplier * dry_base ** (k - dry_allowed_length)."""
    n = len(tokens)
    if n < 2 or first_generated >= n:
        return {}
    last = tokens[-1]
    best: dict[int, int] = {}
    for j in range(max(first_generated, 1), n):
        if tokens[j - 1] != last:
            continue
        k = 1
        while k < min(j, DRY_MAX_MATCH) and tokens[j - 1 - k] == tokens[n - 1 - k]:
            k += 1
        candidate = tokens[j]
        if k > best.get(candidate, 0):
            best[candidate] = k
    allowed = options.dry_allowed_length
    return {
        token: options.dry_multiplier * options.dry_base ** (k - allowed)
        for token, k in best.items()
        if k >= allowed
    }


def choose_token(
    logits: np.ndarray,
    options: GenerationOptions,
    seen: np.ndarray,
    rng: np.random.Generator | None,
    first_generated: int | None = None,
) -> int:
    """Pick one token id from a 1-D logits vector. `seen` holds every token so far (prompt, then
    reply); the reply starts at `first_generated` (default: nothing generated yet). `rng` draws
    the sample (None: a fresh, unseeded one)."""
    logits = np.array(logits, dtype=np.float32)  # a copy: the backend's array stays as it was
    start = len(seen) if first_generated is None else first_generated
    recent = seen[-options.repetition_window :] if options.repetition_window else seen
    apply_repetition_penalty(logits, recent, options.repetition_penalty)
    if options.dry_multiplier > 0 and len(seen) > start:
        window = options.repetition_window or len(seen)
        # Matches start in the reply and reach back at most DRY_MAX_MATCH tokens before it:
        # older prompt tokens are never read, so they are not copied out every token.
        cut = max(0, len(seen) - window, start - DRY_MAX_MATCH)
        tokens = seen[cut:].tolist()
        for token, penalty in dry_penalties(tokens, max(0, start - cut), options).items():
            logits[token] -= penalty
    if options.temperature == 0:
        return int(np.argmax(logits))
    # The candidates left after top-k and min_p, as ids and scores: the rest of the work (and
    # top_p's sort) is on these few rather than the whole vocabulary.
    ids = np.flatnonzero(logits > -np.inf)
    if options.top_k and options.top_k < ids.size:
        kth = np.partition(logits[ids], -options.top_k)[-options.top_k]
        ids = ids[logits[ids] >= kth]
    scores = logits[ids]
    if options.min_p > 0:
        # Keep tokens at least min_p times as likely as the best one, judged before the
        # temperature (as llama.cpp does), so a high temperature cannot revive the tail.
        keep = scores >= scores.max() + math.log(options.min_p)
        ids, scores = ids[keep], scores[keep]
    probs = _softmax(scores / options.temperature)
    if options.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        sorted_probs = probs[order]
        # Drop tokens once the mass before them already reaches top_p; always keep the best.
        drop = np.cumsum(sorted_probs) - sorted_probs >= options.top_p
        drop[0] = False
        probs[order[drop]] = 0.0
    cumulative = np.cumsum(probs, dtype=np.float64)
    rng = rng if rng is not None else np.random.default_rng()
    pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return int(ids[min(pick, ids.size - 1)])


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()

"""Bits per byte of models on held-out technical prose, Python and general prose: lower is better,
and unlike perplexity it compares models with different tokenizers.

    python bench/bpb.py                           # the embedded default model
    python bench/bpb.py --model default --model gpt2 --model path/to/old-model
    python bench/bpb.py --json out.json           # also write the figures as JSON

Each text is scored in windows of the model's context (1024 tokens for GPT-2), each window
overlapping the previous one by half, and only the tokens new to a window count, so every token
is predicted with at least half a window of context. The held-out texts (bench/heldout/) are
in no training corpus of scribe's: documentation (prose), Python (code), and letters, how-tos,
news, reviews and stories written for this check (general). The first row, `bzip2 -9` on the
same files, is the baseline any model must beat (on the small general file bzip2 has less to
learn from, so its figure there is higher).
"""

from __future__ import annotations

import argparse
import bz2
import json
import math
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
TEXTS = {
    "prose": HERE / "heldout" / "prose.txt",
    "code": HERE / "heldout" / "code.txt",
    "general": HERE / "heldout" / "general.txt",
}


@torch.no_grad()
def bits_per_byte(model: torch.nn.Module, tokenizer, text: str, window: int) -> float:
    ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.long)
    stride = window // 2
    nll, counted = 0.0, 0
    for start in range(0, len(ids), stride):
        chunk = ids[max(0, start + stride - window) : start + stride]
        if len(chunk) < 2:
            break
        new = min(stride, len(ids) - start)  # tokens of this window not scored before
        logits = model(input_ids=chunk[None]).logits[0, :-1].float()
        losses = torch.nn.functional.cross_entropy(logits, chunk[1:], reduction="none")
        scored = losses[-new:] if start > 0 else losses
        nll += float(scored.sum())
        counted += len(scored)
        if start + stride >= len(ids):
            break
    assert counted == len(ids) - 1, (counted, len(ids))
    return nll / math.log(2) / len(text.encode("utf-8"))


def score(spec: str) -> dict[str, float]:
    from scribe.engine.runtime.models import load

    loaded = load(None if spec == "default" else spec)
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    window = loaded.n_positions
    out = {}
    for name, path in TEXTS.items():
        out[name] = bits_per_byte(model, tokenizer, path.read_text(encoding="utf-8"), window)
    return out


def bzip2_baseline() -> dict[str, float]:
    return {
        name: 8 * len(bz2.compress(path.read_bytes(), 9)) / len(path.read_bytes())
        for name, path in TEXTS.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model spec (repeatable; default: ours)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {"bzip2 -9": bzip2_baseline()}
    for spec in args.model or ["default"]:
        results[spec] = score(spec)
    sizes = {name: len(path.read_bytes()) for name, path in TEXTS.items()}
    print(
        "bits per byte on held-out text ("
        + ", ".join(f"{name} {size:,} B" for name, size in sizes.items())
        + ")"
    )
    print(f"{'model':40}" + "".join(f" {name:>7}" for name in TEXTS))
    for spec, figures in results.items():
        print(f"{spec[-40:]:40}" + "".join(f" {figures[name]:7.3f}" for name in TEXTS))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does llama.cpp run `scribe export --format gguf`'s file as scribe runs the model? Exports a
model, loads the GGUF with llama-cpp-python, and compares llama.cpp's greedy tokens with
scribe's fp32 greedy tokens on a few prompts (same prompt ids fed to both), and llama.cpp's
tokenization of each prompt with scribe's.

    .venv/bin/python bench/gguf_check.py [--model M] [--quant f16|q8_0|q4_0] [--tokens 20]

Without llama-cpp-python (`pip install llama-cpp-python`, which compiles llama.cpp) it exports,
says that the comparison was skipped, and exits 0. Exit status 1: a prompt tokenized
differently, or a first greedy token that differs (a broken layout garbles every token; a later
divergence can be a near-tie that f16 or quantized weights tip the other way).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = (
    "It was a dark and stormy night",
    "The purpose of this document is",
    "To be, or not to be, that is",
    "def read_config(path):\n    ",
)


def scribe_greedy(gen: Any, ids: list[int], count: int) -> list[int]:
    """`count` greedy tokens from scribe's own decode loop (not stopping at end-of-text, so
    both engines produce the same number)."""
    import numpy as np

    from scribe.engine.runtime.options import GenerationOptions
    from scribe.engine.runtime.sampling import choose_token

    greedy = GenerationOptions(temperature=0)
    gen.forget_cache()
    out: list[int] = []
    for _ in range(count):  # each call feeds only the newest token onto the cached prefix
        logits = gen.next_logits(ids + out)
        out.append(choose_token(logits, greedy, np.empty(0, dtype=np.int64), None))
    return out


def llama_greedy(llm: Any, ids: list[int], count: int) -> list[int]:
    out: list[int] = []
    for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0, reset=True):
        out.append(int(token))
        if len(out) >= count:
            break
    return out


def matching_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def compare(gguf_path: Path, model: str | None, prompts: list[str], count: int) -> bool:
    import llama_cpp

    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load

    gen = Generator(load(model, precision="fp32"))
    cores = os.cpu_count() or 1
    llm = llama_cpp.Llama(
        str(gguf_path), n_ctx=gen.n_positions, n_threads=cores, n_threads_batch=cores,
        verbose=False,
    )  # fmt: skip
    ok = True
    for prompt in prompts:
        ids = gen.encode(prompt)
        theirs = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=False)
        ours, llamas = scribe_greedy(gen, ids, count), llama_greedy(llm, ids, count)
        same = matching_prefix(ours, llamas)
        tokenized = "same" if list(theirs) == ids else f"DIFFERS ({list(theirs)} vs {ids})"
        print(f"\nprompt {prompt!r}: tokenization {tokenized}; greedy {same}/{count} tokens match")
        print(f"  scribe fp32: {gen.decode(ours)!r}")
        print(f"  llama.cpp:   {gen.decode(llamas)!r}")
        ok = ok and list(theirs) == ids and same > 0
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="as --model takes it (default: the default model)")
    parser.add_argument("--quant", choices=("f16", "q8_0", "q4_0"), default="f16")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--prompt", action="append", help="a prompt (repeatable)")
    parser.add_argument("--out", type=Path, help="folder for the export (default: a temp one)")
    args = parser.parse_args()

    from scribe.engine.export.gguf import export_gguf

    out = args.out or Path(tempfile.mkdtemp(prefix="scribe-gguf-"))
    result = export_gguf(args.model, args.quant, out)
    print(f"exported {result.gguf_path} ({result.tensors} tensors, {result.size_bytes} bytes)")
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama_cpp (llama-cpp-python) is not installed: comparison skipped")
        return 0
    ok = compare(result.gguf_path, args.model, args.prompt or list(PROMPTS), args.tokens)
    print("\nverdict:", "llama.cpp agrees with scribe" if ok else "MISMATCH (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

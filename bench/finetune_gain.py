"""Does `scribe finetune` with its defaults teach a model a new style? Bits per byte on held-out
text of that style, before and after the README's own command, with wall time.

    python bench/finetune_gain.py                       # the default model, full and LoRA
    python bench/finetune_gain.py --model gpt2 --methods full

The style is Vim's user manual (/usr/share/vim/vim90/doc/usr_*.txt, Debian's vim-runtime): kept
out of every corpus of scribe's, so neither model has seen it. About 400 KB of its chapters are
the training data and later chapters, about 100 KB, are the held-out text. Each method runs as
a real `scribe finetune DATA --out NAME [--method lora]` with no other flag, in a fresh
SCRIBE_HOME, so what is measured is exactly what a user gets.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bpb import bits_per_byte  # noqa: E402

VIM_DOC = Path("/usr/share/vim/vim90/doc")


def pick(files: list[Path], budget: int) -> list[Path]:
    chosen, size = [], 0
    for f in files:
        if size >= budget:
            break
        chosen.append(f)
        size += f.stat().st_size
    return chosen


def score(spec: str | None, text: str) -> float:
    from scribe.engine.runtime.models import load

    loaded = load(spec)
    return bits_per_byte(loaded.model.eval(), loaded.tokenizer, text, loaded.n_positions)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="base model (default: scribe's default model)")
    parser.add_argument("--methods", default="full,lora")
    parser.add_argument("--train-kb", type=int, default=400)
    parser.add_argument("--heldout-kb", type=int, default=100)
    args = parser.parse_args()
    manual = sorted(VIM_DOC.glob("usr_[0-9]*.txt"))
    if not manual:
        sys.exit("bench: Vim's user manual is missing; apt-get install -y vim-runtime")
    train = pick(manual, args.train_kb * 1000)
    rest = [f for f in manual if f not in train]
    heldout = "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in rest)
    heldout = heldout[: args.heldout_kb * 1000]
    work = Path(tempfile.mkdtemp(prefix="scribe-gain-"))
    data = work / "manual"
    data.mkdir()
    for f in train:
        (data / f.name).write_text(f.read_text(encoding="utf-8", errors="replace"))
    size = sum(f.stat().st_size for f in data.iterdir())
    print(
        f"train: {len(train)} chapters, {size:,} B; held-out: {len(rest)} chapters, "
        f"{len(heldout):,} chars"
    )
    env = {**os.environ, "SCRIBE_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    os.environ.update(SCRIBE_HOME=env["SCRIBE_HOME"])
    before = score(args.model, heldout)
    print(f"{'base':8} held-out {before:.3f} bpb")
    gains = {}
    for method in args.methods.split(","):
        cmd = [sys.executable, "-m", "scribe.tui.cli", "finetune", str(data), "--out", method]
        if args.model:
            cmd += ["--model", args.model]
        if method != "full":
            cmd += ["--method", method]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            return 1
        chosen = re.search(r"lr [^\n]*", proc.stderr)
        after = score(method, heldout)  # a name under the models dir of this SCRIBE_HOME
        gains[method] = before - after
        print(
            f"{method:8} held-out {after:.3f} bpb ({after / before:.2f}x base) in {wall:.0f} s; "
            f"defaults: {chosen.group(0) if chosen else '?'}"
        )
    if "full" in gains and "lora" in gains and gains["full"] > 0:
        print(f"lora gets {gains['lora'] / gains['full']:.0%} of full's gain")
    return 0


if __name__ == "__main__":
    sys.exit(main())

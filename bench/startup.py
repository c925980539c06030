"""`scribe complete` start-up: the time from starting the process to the first byte of its answer
on stdout, and to its exit, for one or more `scribe` executables, runs interleaved so that a
changing machine load falls on each alike.

    .venv/bin/python bench/startup.py [--scribe PATH ...] [--model default] [--runs 12]

Each run pipes a short draft to `scribe complete --max-tokens 5 --temperature 0` and reads its
stdout as it comes. Prints each executable's median and range, and the load average around the
runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRAFT = b"The meeting moved to Thursday, so the report is due"


def first_byte(scribe: str, model: str) -> tuple[float, float]:
    """Seconds to the first byte on stdout, and to the process's exit."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [scribe, "complete", "--model", model, "--max-tokens", "5", "--temperature", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(DRAFT)
    proc.stdin.close()
    byte = proc.stdout.read(1)
    first = time.perf_counter() - started
    proc.stdout.read()
    if proc.wait() != 0 or not byte:
        raise SystemExit(f"{scribe} complete failed (exit {proc.returncode})")
    return first, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scribe", action="append", help="a scribe executable (repeatable)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    scribes = args.scribe or [str(Path(sys.executable).parent / "scribe")]
    for scribe in scribes:  # one unmeasured start each: the files in the page cache
        first_byte(scribe, args.model)
    times: dict[str, list[tuple[float, float]]] = {s: [] for s in scribes}
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        for scribe in scribes:
            times[scribe].append(first_byte(scribe, args.model))
    load_after = os.getloadavg()[0]
    print(f"{args.runs} runs each, load average {load_before:.2f} before, {load_after:.2f} after")
    for scribe, runs in times.items():
        firsts = [f for f, _ in runs]
        exits = [e for _, e in runs]
        print(
            f"{scribe}: first byte median {statistics.median(firsts):.3f} s "
            f"({min(firsts):.3f}-{max(firsts):.3f}), exit median {statistics.median(exits):.3f} s"
        )


if __name__ == "__main__":
    main()

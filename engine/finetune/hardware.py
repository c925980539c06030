"""What the machine offers training: bf16 support and the fastest CPU thread count (measured)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from scribe.engine.runtime.threads import available_cores


def bf16_native(device: torch.device) -> bool:
    """bf16 autocast only pays off where the hardware has bf16 arithmetic."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def usable_cores(local_world: int = 1) -> int:
    """This process's share of the cores when `local_world` processes train on this machine."""
    return max(1, available_cores() // max(1, local_world))


def thread_candidates(cores: int) -> list[int]:
    return sorted({cores, max(1, cores // 2), max(1, cores - 1)})


def choose_threads(cores: int, trial: Callable[[], None], repeats: int = 2) -> int:
    """Time `trial` (one training micro-step) at a few thread counts and keep the fastest.
    The RNG is forked so the measurement does not change the run."""
    candidates = thread_candidates(cores)
    if len(candidates) == 1:
        return candidates[0]
    timings = {}
    with torch.random.fork_rng():
        for threads in candidates:
            torch.set_num_threads(threads)
            trial()  # warm-up at this thread count
            start = time.perf_counter()
            for _ in range(repeats):
                trial()
            timings[threads] = (time.perf_counter() - start) / repeats
    return min(timings, key=lambda t: timings[t])

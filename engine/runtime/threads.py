"""Thread counts chosen by measuring: an adaptive count for decode, and all cores for prefill
unless decode has found fewer threads faster (another process is keeping a core busy).

A decode step is a chain of small matmuls; with OpenMP every one ends at a barrier, so when another
process keeps one core busy, the thread that shares that core makes every step wait for it and
two threads can run at a third of their quiet speed while one thread loses little. The decode
count is therefore picked by timing real steps: the best count so far is used, and every
`PROBE_EVERY` steps each other count gets a couple of steps, so the choice follows the load.

The pacing runs on a `ThreadPool`: torch's for the torch backends (torch is imported only when
that pool is used), none for a backend that sizes its own (ONNX Runtime; the numpy backend's one
BLAS thread, blas_threads.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

PROBE_EVERY = 16  # steps before another thread count is first re-measured
PROBE_BACKOFF_MAX = 256  # a count that keeps losing is re-measured at most this rarely
SMOOTHING = 0.3  # weight of the newest step in each count's running average


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ThreadPool(Protocol):
    """A thread pool whose size can be read and set while running."""

    def get(self) -> int: ...

    def set(self, count: int) -> None: ...


class TorchThreads:
    """torch's intra-op pool."""

    def get(self) -> int:
        import torch

        return torch.get_num_threads()

    def set(self, count: int) -> None:
        import torch

        torch.set_num_threads(count)


class FixedThreads:
    """A pool the decode loop leaves alone (a backend that sizes its own, like ONNX Runtime)."""

    def get(self) -> int:
        return 1

    def set(self, count: int) -> None:
        pass


TORCH = TorchThreads()
FIXED = FixedThreads()


@contextmanager
def using(threads: int, pool: ThreadPool = TORCH) -> Iterator[None]:
    """Run a block with `threads` threads in `pool`, restoring the previous count after."""
    before = pool.get()
    if threads != before:
        pool.set(threads)
    try:
        yield
    finally:
        if pool.get() != before:
            pool.set(before)


class DecodeThreads:
    """Picks the thread count for each decode step from timings of earlier steps.

    Every count is timed once at the start; afterwards the best count runs, and each other count
    gets one step after `interval[count]` steps. A count that loses its probe waits two to four
    times as long for the next (a probe on an overloaded core can cost many quiet steps); one that
    wins resets.
    """

    def __init__(self, cores: int | None = None, pool: ThreadPool = TORCH) -> None:
        self.pool = pool
        cores = cores or available_cores()
        self.candidates = sorted({cores, max(1, cores // 2), 1}, reverse=True)
        self.average: dict[int, float] = {}
        self.interval = dict.fromkeys(self.candidates, PROBE_EVERY)
        self._since = dict.fromkeys(self.candidates, 0)  # steps since each count last ran
        self._started = 0.0
        self._current = self.candidates[0]

    @property
    def best(self) -> int:
        if not self.average:
            return self.candidates[0]
        return min(self.average, key=self.average.__getitem__)

    def prefill_threads(self) -> int:
        """All cores for prefill, unless decode timings show the machine is busy: a matmul
        split across a shared core waits for it at every barrier, so fewer threads win then."""
        return self.best

    def _pick(self) -> int:
        for count in self.candidates:
            if count not in self.average:
                return count
        best = self.best
        for count in self.candidates:
            if count != best and self._since[count] >= self.interval[count]:
                return count
        return best

    def begin(self) -> int:
        """Call before a step: sets and returns the thread count for it."""
        count = self._pick()
        if count != self.pool.get():
            self.pool.set(count)
        self._current = count
        self._started = time.perf_counter()
        return count

    def end(self) -> None:
        """Call after the step, to record how long it took."""
        took = time.perf_counter() - self._started
        count, best = self._current, self.best
        for other in self.candidates:
            self._since[other] += 1
        self._since[count] = 0
        old = self.average.get(count)
        if old is None or count != best:  # a probe stands for the current load on its own
            self.average[count] = took
        else:
            self.average[count] = old + SMOOTHING * (took - old)
        if count != best:
            if self.average[count] < self.average[best]:
                self.interval[count] = PROBE_EVERY
                self.interval[best] = PROBE_EVERY
            else:  # wait longer after a costly probe: it may have cost several quiet steps
                factor = 4 if self.average[count] > 2 * self.average[best] else 2
                self.interval[count] = min(PROBE_BACKOFF_MAX, self.interval[count] * factor)

"""A small plain GPT-2 on numpy (gpt2/numpy_forward.py), in fp32, without importing torch: the
fast start of `scribe complete` and the editor servers on the embedded model (backend.py's
table says when). Its KV cache is preallocated for the whole window, so dropping a cached suffix
is only moving the length back."""

from __future__ import annotations

import numpy as np

from scribe.engine.runtime import blas_threads
from scribe.engine.runtime.gpt2.numpy_forward import NumpyGPT2
from scribe.engine.runtime.prefix_reuse import PrefixReuse


class NumpyBackend:
    precision = "fp32"
    threads = None  # one BLAS thread (blas_threads.py), which the decode loop leaves alone

    def __init__(self, model: NumpyGPT2) -> None:
        self.model = model
        self.cached = PrefixReuse()
        blas_threads.set_threads(1)

    def reset(self) -> None:
        self.cached.clear()

    def prefill(self, ids: list[int]) -> tuple[int, np.ndarray]:
        return self.cached.prefill(ids, self.feed)

    def feed(self, new_ids: list[int]) -> np.ndarray:
        return self.cached.feed(new_ids, self.model.forward)

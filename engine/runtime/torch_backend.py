"""A plain GPT-2 on scribe's lean torch forward (gpt2/forward.py) in fp32, bf16, int8 or int4
widened to int8, over a KV cache preallocated for the whole window: dropping a cached suffix is
only moving the length back."""

from __future__ import annotations

import numpy as np

from scribe.engine.runtime.gpt2.forward import FastGPT2
from scribe.engine.runtime.prefix_reuse import PrefixReuse
from scribe.engine.runtime.threads import TORCH


class TorchBackend:
    threads = TORCH  # decode runs on torch's thread pool

    def __init__(self, fast: FastGPT2) -> None:
        self.fast = fast
        self.precision = fast.precision
        self.cached = PrefixReuse()

    def reset(self) -> None:
        self.cached.clear()

    def prefill(self, ids: list[int]) -> tuple[int, np.ndarray]:
        return self.cached.prefill(ids, self.feed)

    def feed(self, new_ids: list[int]) -> np.ndarray:
        logits = self.cached.feed(new_ids, self.fast.forward)
        return logits.float().numpy()  # float32 on the CPU: shares the tensor's memory

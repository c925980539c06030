"""Any model transformers can run (other architectures, peft adapters, a model being trained),
through its own forward and KV cache, with prefix reuse.

All calls into transformers' cache API live here, so its churn between versions touches one file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scribe.engine.runtime.prefix_reuse import PrefixReuse
from scribe.engine.runtime.threads import TORCH


class TransformersBackend:
    precision = "transformers"
    threads = TORCH  # decode runs on torch's thread pool

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cached = PrefixReuse()
        self.cache: Any = None
        # A model being trained may sit on a GPU; inputs go where it is.
        self.device = next(model.parameters()).device

    def reset(self) -> None:
        self.cached.clear()
        self.cache = None

    def prefill(self, ids: list[int]) -> tuple[int, np.ndarray]:
        """Bring the cache to `ids`, feeding only what is not cached; returns (reused, last
        logits)."""
        reuse = self.cached.reusable(ids)
        if reuse == 0:
            self.reset()
        elif reuse < len(self.cached.ids):
            self.cache.crop(reuse - len(self.cached.ids))  # transformers 5: negative = drop
            self.cached.keep(reuse)
        return reuse, self.feed(ids[reuse:])

    def feed(self, new_ids: list[int]) -> np.ndarray:
        """Run the model over new tokens on top of the cache; returns the last position's logits."""
        if self.cache is None:
            from transformers import DynamicCache

            self.cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.tensor([new_ids], dtype=torch.long, device=self.device),
                cache=self.cache,
                use_cache=True,
                logits_to_keep=1,
            )
        self.cache = out.cache
        self.cached.ids.extend(new_ids)
        return out.logits[0, -1].float().cpu().numpy()  # sampling runs on the CPU, in fp32

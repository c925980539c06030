"""The model's KV cache and the token ids it holds, with prefix reuse.

All calls into transformers' cache API live here, so its churn between versions touches one file.
"""

from __future__ import annotations

from typing import Any

import torch


class KVState:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.ids: list[int] = []
        self.cache: Any = None
        # A model being trained may sit on a GPU; inputs go where it is.
        self.device = next(model.parameters()).device if model is not None else None

    def reset(self) -> None:
        self.ids, self.cache = [], None

    def reusable(self, ids: list[int]) -> int:
        """How many leading tokens of `ids` already sit in the cache (at least one is always
        fed)."""
        common = 0
        for old, new in zip(self.ids, ids, strict=False):
            if old != new:
                break
            common += 1
        return min(common, len(ids) - 1)

    def prefill(self, ids: list[int]) -> tuple[int, torch.Tensor]:
        """Bring the cache to `ids`, feeding only what is not cached; returns (reused, last
        logits)."""
        reuse = self.reusable(ids)
        if reuse == 0:
            self.reset()
        elif reuse < len(self.ids):
            self.cache.crop(reuse - len(self.ids))  # transformers 5: negative = tokens to drop
            self.ids = self.ids[:reuse]
        return reuse, self.feed(ids[reuse:])

    def feed(self, new_ids: list[int]) -> torch.Tensor:
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
        self.ids.extend(new_ids)
        return out.logits[0, -1].float().cpu()  # sampling runs on the CPU, in fp32


class InPlaceKVState(KVState):
    """The same prefix-reuse bookkeeping over a cache preallocated for the whole window, which
    each step writes in place: dropping a suffix is only moving the length back. Subclasses
    define `feed`."""

    def __init__(self) -> None:
        super().__init__(model=None)

    def reset(self) -> None:
        self.ids = []

    def prefill(self, ids: list[int]) -> tuple[int, torch.Tensor]:
        reuse = self.reusable(ids)
        self.ids = self.ids[:reuse]
        return reuse, self.feed(ids[reuse:])


class FastKVState(InPlaceKVState):
    """FastGPT2's preallocated cache (gpt2/forward.py)."""

    def __init__(self, fast: Any) -> None:
        super().__init__()
        self.fast = fast

    def feed(self, new_ids: list[int]) -> torch.Tensor:
        logits = self.fast.forward(new_ids, len(self.ids))
        self.ids.extend(new_ids)
        return logits

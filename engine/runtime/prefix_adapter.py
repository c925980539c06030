"""Prefix tuning that scribe's engine really uses.

peft's prefix tuning hands the prefix to the model as `past_key_values`, which transformers 5's
GPT-2 no longer reads (it takes `cache=`), so the prefix is silently ignored. Here the prefix is
owned by a small wrapper that behaves like a transformers causal LM: `forward(input_ids, cache=...,
use_cache=..., logits_to_keep=...)`. On a fresh cache it first writes the prefix's key/values into
it; the real tokens keep positions 0, 1, 2, ... The cache it returns (`PrefixCache`) counts and
crops in real tokens, so the engine's prefix reuse works unchanged.

Saved as a peft-format adapter folder (adapter_config.json with peft_type PREFIX_TUNING and
`prompt_embeddings` [virtual tokens, layers * 2 * width]), which `models.load` turns
back into this wrapper.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scribe.engine.runtime.model_files import ADAPTER_CONFIG, ADAPTER_WEIGHTS


class PrefixCache:
    """A transformers cache holding the prefix plus real tokens, seen as real tokens only."""

    def __init__(self, inner: Any, prefix_len: int) -> None:
        self.inner = inner
        self.prefix_len = prefix_len

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.inner.get_seq_length(layer_idx) - self.prefix_len

    def crop(self, length: int) -> None:
        """transformers 5: a negative value drops that many tokens (the same count here); a
        positive one (older API) is the length to keep, counted in real tokens."""
        drop = -length if length < 0 else self.get_seq_length() - length
        if drop > 0:
            self.inner.crop(-drop)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PrefixModel(nn.Module):
    def __init__(self, base: Any, prefix: torch.Tensor) -> None:
        super().__init__()
        self.base = base
        self.config = base.config
        self.prefix = nn.Parameter(prefix)  # [virtual tokens, layers * 2 * width], peft's layout
        for p in base.parameters():
            p.requires_grad_(False)

    @property
    def num_virtual_tokens(self) -> int:
        return int(self.prefix.shape[0])

    @classmethod
    def create(cls, base: Any, tokens: int, init_ids: list[int]) -> PrefixModel:
        """Initialise from the key/values of real text (more stable than random numbers)."""
        ids = (init_ids * (tokens // max(len(init_ids), 1) + 1))[:tokens] or [0] * tokens
        with torch.no_grad():
            out = base(input_ids=torch.tensor([ids]), use_cache=True)
        layers = []
        for layer in range(base.config.n_layer):
            k, v = _layer_kv(out.cache, layer)  # [1, heads, tokens, head_dim]
            layers += [k[0].permute(1, 0, 2), v[0].permute(1, 0, 2)]  # [tokens, heads, head_dim]
        prefix = torch.stack(layers, dim=1).reshape(tokens, -1).clone()
        return cls(base, prefix)

    def _prefix_cache(self, batch: int) -> Any:
        from transformers import DynamicCache

        cfg = self.config
        heads, width = cfg.n_head, cfg.n_embd
        kv = self.prefix.view(self.num_virtual_tokens, cfg.n_layer * 2, heads, width // heads)
        kv = kv.permute(1, 2, 0, 3)  # [layers*2, heads, tokens, head_dim]
        cache = DynamicCache(config=cfg)
        for layer in range(cfg.n_layer):
            k = kv[2 * layer].unsqueeze(0).expand(batch, -1, -1, -1)
            v = kv[2 * layer + 1].unsqueeze(0).expand(batch, -1, -1, -1)
            dtype = self.base.get_input_embeddings().weight.dtype
            cache.update(k.to(dtype), v.to(dtype), layer)
        return cache

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: Any = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> Any:
        kwargs.pop("position_ids", None)
        kwargs.pop("attention_mask", None)
        if isinstance(cache, PrefixCache):
            inner, seen = cache.inner, cache.get_seq_length()
        else:  # first call (the engine may hand in a fresh, empty cache): start with the prefix
            inner, seen = self._prefix_cache(input_ids.shape[0]), 0
        n = input_ids.shape[1]
        positions = torch.arange(seen, seen + n, device=input_ids.device).unsqueeze(0)
        out = self.base(
            input_ids=input_ids,
            cache=inner,
            use_cache=True,
            position_ids=positions.expand(input_ids.shape[0], -1),
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        out.cache = PrefixCache(out.cache, self.num_virtual_tokens) if use_cache else None
        return out

    # -- files ------------------------------------------------------------------------------
    def save_adapter(self, folder: Path, base_path: Path) -> None:
        from safetensors.torch import save_file

        cfg = self.config
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {"prompt_embeddings": self.prefix.detach().contiguous()}, str(folder / ADAPTER_WEIGHTS)
        )
        config = {
            "peft_type": "PREFIX_TUNING",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": str(base_path),
            "num_virtual_tokens": self.num_virtual_tokens,
            "token_dim": cfg.n_embd,
            "num_transformer_submodules": 1,
            "num_attention_heads": cfg.n_head,
            "num_layers": cfg.n_layer,
            "encoder_hidden_size": cfg.n_embd,
            "prefix_projection": False,
            "inference_mode": True,
        }
        (folder / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")


def _layer_kv(cache: Any, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    entry = cache.layers[layer]
    return entry.keys, entry.values


def load_prefix_model(folder: Path, base: Any) -> PrefixModel:
    """A saved prefix adapter on its (already loaded) base model."""
    from safetensors.torch import load_file

    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if config.get("prefix_projection"):
        raise ValueError("prefix adapters with a projection network are not supported")
    prefix = load_file(str(folder / ADAPTER_WEIGHTS))["prompt_embeddings"]
    expected = base.config.n_layer * 2 * base.config.n_embd
    if prefix.shape[1] != expected:
        raise ValueError(
            f"prefix width {prefix.shape[1]} does not match the base model ({expected})"
        )
    model = PrefixModel(base, prefix.to(base.get_input_embeddings().weight.dtype))
    return model.eval()

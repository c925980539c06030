"""A lean GPT-2 forward pass over the loaded transformers weights, for batch-1 generation.

transformers' eager GPT-2 spends much of a decode step outside the matmuls: a cache grown by
concatenation, module hooks and Python dispatch. This runs the same arithmetic (the same torch ops
in the same order, so fp32 greedy output matches `generate()`) with a KV cache preallocated for
the whole context, logits for the last position only, and linears that may be quantized
(engine/quantize.py). With int8 weights, one-token steps run the same ops from TorchScript
(engine/scripted_decode.py). Only plain GPT2LMHeadModel is handled; anything else (peft wrappers,
other architectures) keeps the generic path in engine/kv_cache.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from scribe.engine import scripted_decode
from scribe.engine.quantize import Linear, Quantized, make_linear, quantize

Activation = Callable[[torch.Tensor], torch.Tensor]


def supports(model: Any) -> bool:
    """True for a plain GPT-2 whose options the lean forward reproduces exactly."""
    if type(model).__name__ != "GPT2LMHeadModel":
        return False
    config = model.config
    unusual = (
        getattr(config, "scale_attn_by_inverse_layer_idx", False)
        or getattr(config, "reorder_and_upcast_attn", False)
        or getattr(config, "add_cross_attention", False)
        or not getattr(config, "scale_attn_weights", True)
    )
    weight = model.transformer.wte.weight
    return not unusual and weight.dtype == torch.float32 and weight.device.type == "cpu"


def _tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _activation(act: Activation, precision: str) -> Activation:
    """The model's own GELU in fp32, for output identical to transformers'. Quantized weights
    are not exact anyway, so there GPT-2's tanh GELU (five elementwise ops in transformers) runs
    as torch's one fused kernel: the same function to within 2e-7, a fifth of the time."""
    if precision != "fp32" and type(act).__name__ == "NewGELUActivation":
        return _tanh_gelu
    return act


@dataclass
class Block:
    ln1: tuple[torch.Tensor, torch.Tensor]
    attn: Linear
    attn_proj: Linear
    ln2: tuple[torch.Tensor, torch.Tensor]
    fc: Linear
    mlp_proj: Linear


class FastGPT2:
    """Weights in flat tensors plus a preallocated KV cache of n_positions tokens."""

    def __init__(
        self, model: Any, precision: str = "fp32", cached: dict[str, Quantized] | None = None
    ) -> None:
        config = model.config
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_dim = config.n_embd // config.n_head
        self.n_positions = config.n_positions
        self.eps = config.layer_norm_epsilon
        self.scale = self.head_dim**-0.5
        self.precision = precision
        cached = cached or {}
        # The quantized form of every large matrix, by name: what engine/quantize.py caches.
        self.quantized: dict[str, Quantized] = {}
        t = model.transformer
        self.wte = t.wte.weight.detach()
        self.wpe = t.wpe.weight.detach()
        self.act = _activation(t.h[0].mlp.act, precision)
        self.blocks: list[Block] = []
        for i, h in enumerate(t.h):

            def lin(name: str, conv: Any, i: int = i) -> Linear:
                return self._linear(f"h.{i}.{name}", conv.weight.detach(), conv.bias, cached)

            self.blocks.append(
                Block(
                    ln1=(h.ln_1.weight.detach(), h.ln_1.bias.detach()),
                    attn=lin("attn.c_attn", h.attn.c_attn),
                    attn_proj=lin("attn.c_proj", h.attn.c_proj),
                    ln2=(h.ln_2.weight.detach(), h.ln_2.bias.detach()),
                    fc=lin("mlp.c_fc", h.mlp.c_fc),
                    mlp_proj=lin("mlp.c_proj", h.mlp.c_proj),
                )
            )
        self.ln_f = (t.ln_f.weight.detach(), t.ln_f.bias.detach())
        # The LM head (usually tied to wte) in F.linear's [vocab, n_embd] layout, as transformers
        # runs it.
        head = model.lm_head
        self.head = self._linear("lm_head", head.weight.detach(), head.bias, cached, True)
        self.tanh_gelu = self.act is _tanh_gelu
        # Keys and values of every layer: [layer, key|value, head, position, head_dim].
        self.kv = torch.zeros(len(self.blocks), 2, self.n_head, self.n_positions, self.head_dim)
        # int8 decode steps run as one TorchScript function when possible (scripted_decode.py).
        self.step = scripted_decode.build(self)

    def _linear(
        self,
        name: str,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        cached: dict[str, Quantized],
        transposed: bool = False,
    ) -> Linear:
        bias = None if bias is None else bias.detach()
        if self.precision == "fp32":
            return make_linear("fp32", weight, bias, transposed=transposed)
        data = cached.get(name)
        if data is None:
            data = quantize(self.precision, weight if transposed else weight.t())
        self.quantized[name] = data
        return make_linear(self.precision, weight, bias, data, transposed=transposed)

    @torch.inference_mode()
    def forward(self, ids: list[int], start: int, all_positions: bool = False) -> torch.Tensor:
        """Run tokens at positions start.. over the cache; returns the last position's logits
        ([vocab]), or every new position's ([n, vocab]) for scoring text."""
        n = len(ids)
        end = start + n
        if end > self.n_positions:
            raise ValueError(f"{end} tokens exceed the model's {self.n_positions} positions")
        if n == 1 and not all_positions and self.step is not None:
            return self.step(ids[0], start)
        tokens = torch.tensor(ids, dtype=torch.long)
        x = self.wte[tokens] + self.wpe[start:end]  # [n, C]
        causal = n > 1 and start == 0
        mask = None
        if n > 1 and start > 0:  # new tokens see all cached ones and the earlier new ones
            mask = torch.ones(n, end, dtype=torch.bool).tril(diagonal=start)
        c, heads, d = self.n_embd, self.n_head, self.head_dim
        for layer, b in enumerate(self.blocks):
            h = F.layer_norm(x, (c,), b.ln1[0], b.ln1[1], self.eps)
            q, k, v = b.attn(h).split(c, dim=1)
            kv = self.kv[layer]
            kv[0, :, start:end] = k.view(n, heads, d).transpose(0, 1)
            kv[1, :, start:end] = v.view(n, heads, d).transpose(0, 1)
            a = F.scaled_dot_product_attention(
                q.view(1, n, heads, d).transpose(1, 2),
                kv[0:1, :, :end],
                kv[1:2, :, :end],
                attn_mask=mask,
                scale=self.scale,
                is_causal=causal,
            )
            x = b.attn_proj(a.transpose(1, 2).reshape(n, c)) + x
            h = F.layer_norm(x, (c,), b.ln2[0], b.ln2[1], self.eps)
            x = x + b.mlp_proj(self.act(b.fc(h)))
        if all_positions:
            return self.head(F.layer_norm(x, (c,), self.ln_f[0], self.ln_f[1], self.eps))
        h = F.layer_norm(x[-1:], (c,), self.ln_f[0], self.ln_f[1], self.eps)
        return self.head(h)[0]

"""A lean GPT-2 forward pass over the loaded transformers weights, for batch-1 generation.

transformers' eager GPT-2 spends much of a decode step outside the matmuls: a cache grown by
concatenation, module hooks and Python dispatch. This runs the same arithmetic (the same torch ops
in the same order, so fp32 greedy output matches `generate()`) with a KV cache preallocated for
the whole context, logits for the last position only, and linears that may be quantized
(quantize.py). With int8 weights, one-token steps run the same ops from TorchScript
(scripted_step.py). Only plain GPT2LMHeadModel is handled; anything else (peft wrappers,
other architectures) keeps transformers' own forward (../transformers_backend.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from scribe.engine.runtime.gpt2 import scripted_step
from scribe.engine.runtime.gpt2.checkpoint import Shape, is_plain
from scribe.engine.runtime.gpt2.quantize import (
    Linear,
    Quantized,
    dequantize,
    input_width,
    make_linear,
    quantize_weights,
    widen_int4,
)

Activation = Callable[[torch.Tensor], torch.Tensor]


def supports(model: Any) -> bool:
    """True for a transformers GPT-2 whose options the lean forward reproduces exactly."""
    if type(model).__name__ != "GPT2LMHeadModel" or not is_plain(model.config.to_dict()):
        return False
    weight = model.transformer.wte.weight
    return weight.dtype == torch.float32 and weight.device.type == "cpu"


def model_weights(model: Any) -> dict[str, torch.Tensor]:
    """A transformers GPT-2's tensors by gpt2_checkpoint.Weights' names."""
    return {
        name.removeprefix("transformer."): tensor.detach()
        for name, tensor in model.state_dict(keep_vars=True).items()
    }


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU as transformers' NewGELUActivation computes it, op for op, so fp32 output
    is identical to transformers'."""
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))
    return 0.5 * x * (1.0 + torch.tanh(inner))


def _tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    """The same function as torch's one fused kernel (within 2e-7, a fifth of the time), for
    quantized weights, which are not exact anyway."""
    return F.gelu(x, approximate="tanh")


def linears(shape: Shape) -> list[tuple[str, bool]]:
    """Every linear of the model by name, with whether its weight is stored [out, in]
    (the tied LM head) rather than Conv1D's [in, out]: what a quantized precision stores."""
    names = [
        (f"h.{i}.{part}", False)
        for i in range(shape.n_layer)
        for part in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    ]
    return [*names, ("lm_head", True)]


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
        self,
        shape: Shape,
        weights: Mapping[str, torch.Tensor],
        precision: str = "fp32",
        quantized: dict[str, Quantized] | None = None,
    ) -> None:
        """`quantized`: the stored form of every linear (`linears`) for a quantized precision,
        prepared beforehand: the runtime reads it from its cache (../backend.py)."""
        self.n_head = shape.n_head
        self.n_embd = shape.n_embd
        self.head_dim = shape.n_embd // shape.n_head
        self.n_positions = shape.n_positions
        self.eps = shape.eps
        self.scale = self.head_dim**-0.5
        self.precision = precision
        if precision != "fp32" and quantized is None:
            raise ValueError(f"{precision} weights need their stored form (quantize_weights)")
        stored = quantized or {}
        # int4 tokens read the 8-bit head's table, as ONNX Runtime's int4 does.
        int4 = precision == "int4"
        self.wte = dequantize(stored["lm_head"], self.n_embd) if int4 else weights["wte.weight"]
        self.wpe = weights["wpe.weight"]
        # Quantized weights always run the fused tanh GELU; scripted_step.py relies on it.
        self.act: Activation = gelu_new if precision == "fp32" else _tanh_gelu

        def norm(name: str) -> tuple[torch.Tensor, torch.Tensor]:
            return weights[f"{name}.weight"], weights[f"{name}.bias"]

        def lin(name: str) -> Linear:
            return self._linear(name, weights, stored)

        self.blocks = [
            Block(
                ln1=norm(f"h.{i}.ln_1"),
                attn=lin(f"h.{i}.attn.c_attn"),
                attn_proj=lin(f"h.{i}.attn.c_proj"),
                ln2=norm(f"h.{i}.ln_2"),
                fc=lin(f"h.{i}.mlp.c_fc"),
                mlp_proj=lin(f"h.{i}.mlp.c_proj"),
            )
            for i in range(shape.n_layer)
        ]
        self.ln_f = norm("ln_f")
        # The LM head (tied to wte) in F.linear's [vocab, n_embd] layout, as transformers runs it.
        self.head = self._linear("lm_head", weights, stored, transposed=True)
        # Keys and values of every layer: [layer, key|value, head, position, head_dim].
        self.kv = torch.zeros(len(self.blocks), 2, self.n_head, self.n_positions, self.head_dim)
        # int8 decode steps run as one TorchScript function when possible (scripted_step.py).
        self.step = scripted_step.build(self)

    @classmethod
    def from_model(cls, model: Any, precision: str = "fp32") -> FastGPT2:
        """A transformers GPT-2 on the lean forward, its weights quantized now (no cache)."""
        shape, weights = Shape.from_config(model.config), model_weights(model)
        quantized = None
        if precision != "fp32":
            quantized = quantize_weights(precision, weights, linears(shape))
        return cls(shape, weights, precision, quantized)

    def _linear(
        self,
        name: str,
        weights: Mapping[str, torch.Tensor],
        stored: dict[str, Quantized],
        transposed: bool = False,
    ) -> Linear:
        """Conv1D's [in, out] weight, or the head's [out, in] when `transposed`; a quantized
        precision runs from its stored form and never reads the float weight."""
        bias = weights.get(f"{name}.bias")
        if self.precision == "fp32":
            return make_linear("fp32", weights[f"{name}.weight"], bias, transposed=transposed)
        if self.precision == "int4":  # its exact int8 widening, on the int8 kernel
            rows = widen_int4(stored[name], input_width(name, stored, self.n_embd))
            return make_linear("int8", None, bias, rows)
        return make_linear(self.precision, None, bias, stored[name], transposed=transposed)

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

"""A GPT-2 forward pass in numpy (fp32), for batch-1 generation on small models without torch.

Importing torch costs about 1.8 s on a 2-core machine, more than a small model needs to load and
answer. This runs the arithmetic of forward.py's fp32 path (pre-LN blocks, causal attention over
a preallocated KV cache, GPT-2's tanh GELU, the LM head tied to wte) with numpy's BLAS, reading
the weights straight from safetensors files (fp16 widened to fp32 once, at load).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scribe.engine.runtime.gpt2.checkpoint import Shape

# safetensors dtypes numpy reads (bf16 has no numpy type: such files stay on torch).
READABLE_DTYPES = {"F32", "F16"}
GELU_C = math.sqrt(2.0 / math.pi)
QUERY_BLOCK = 128  # queries whose attention scores are computed at once (a long prefill)


def load_arrays(files: Iterable[Path]) -> dict[str, np.ndarray]:
    """GPT-2's tensors by checkpoint.Weights' names ("wte.weight", "h.0.attn.c_attn.weight",
    ...), as float32; "lm_head.weight" only when a file has its own (else it is wte)."""
    from safetensors.numpy import load_file

    arrays: dict[str, np.ndarray] = {}
    for file in files:
        for key, array in load_file(str(file)).items():
            if not key.endswith((".attn.bias", ".attn.masked_bias")):  # OpenAI's causal masks
                arrays[key.removeprefix("transformer.")] = array.astype(np.float32, copy=False)
    return arrays


@dataclass
class Block:
    ln1: tuple[np.ndarray, np.ndarray]
    attn: tuple[np.ndarray, np.ndarray]  # Conv1D: [in, out] weight, bias
    attn_proj: tuple[np.ndarray, np.ndarray]
    ln2: tuple[np.ndarray, np.ndarray]
    fc: tuple[np.ndarray, np.ndarray]
    mlp_proj: tuple[np.ndarray, np.ndarray]


class NumpyGPT2:
    """Weights as float32 arrays plus a preallocated KV cache of n_positions tokens."""

    def __init__(self, shape: Shape, arrays: dict[str, np.ndarray]) -> None:
        self.n_head = shape.n_head
        self.n_embd = shape.n_embd
        self.head_dim = shape.n_embd // shape.n_head
        self.n_positions = shape.n_positions
        self.eps = shape.eps
        self.scale = np.float32(self.head_dim**-0.5)
        self.wte = arrays["wte.weight"]
        self.wpe = arrays["wpe.weight"]

        def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
            return arrays[f"{name}.weight"], arrays[f"{name}.bias"]

        self.blocks = [
            Block(
                ln1=pair(f"h.{i}.ln_1"),
                attn=pair(f"h.{i}.attn.c_attn"),
                attn_proj=pair(f"h.{i}.attn.c_proj"),
                ln2=pair(f"h.{i}.ln_2"),
                fc=pair(f"h.{i}.mlp.c_fc"),
                mlp_proj=pair(f"h.{i}.mlp.c_proj"),
            )
            for i in range(shape.n_layer)
        ]
        self.ln_f = pair("ln_f")
        # [n_embd, vocab]: a transposed view, which BLAS reads as it is (no copy).
        self.head_t = arrays.get("lm_head.weight", self.wte).T
        layers, heads, d = len(self.blocks), self.n_head, self.head_dim
        # Keys and values of every layer: [layer, head, position, head_dim] each.
        self.keys = np.zeros((layers, heads, self.n_positions, d), dtype=np.float32)
        self.values = np.zeros((layers, heads, self.n_positions, d), dtype=np.float32)

    @classmethod
    def from_files(cls, shape: Shape, files: Iterable[Path]) -> NumpyGPT2:
        return cls(shape, load_arrays(files))

    def forward(self, ids: list[int], start: int) -> np.ndarray:
        """Run tokens at positions start.. over the cache; returns the last position's logits
        ([vocab], float32)."""
        n = len(ids)
        end = start + n
        if end > self.n_positions:
            raise ValueError(f"{end} tokens exceed the model's {self.n_positions} positions")
        x = self.wte[ids] + self.wpe[start:end]  # [n, C]
        c, heads, d = self.n_embd, self.n_head, self.head_dim
        for layer, b in enumerate(self.blocks):
            qkv = self._norm(x, b.ln1) @ b.attn[0]
            qkv += b.attn[1]
            q, k, v = qkv.reshape(n, 3, heads, d).transpose(1, 2, 0, 3)  # each [H, n, d]
            self.keys[layer, :, start:end] = k
            self.values[layer, :, start:end] = v
            a = self._attend(q, self.keys[layer, :, :end], self.values[layer, :, :end], start)
            x += a.reshape(n, c) @ b.attn_proj[0] + b.attn_proj[1]
            h = self._norm(x, b.ln2) @ b.fc[0]
            h += b.fc[1]
            x += _gelu(h) @ b.mlp_proj[0] + b.mlp_proj[1]
        return self._norm(x[-1], self.ln_f) @ self.head_t

    def _attend(
        self, q: np.ndarray, keys: np.ndarray, values: np.ndarray, start: int
    ) -> np.ndarray:
        """Causal attention of new queries [H, n, d] (positions start..) over keys and values
        [H, end, d]: [n, H, d]. Queries go in blocks, so the scores of a long input stay small
        enough for the cache."""
        n, end = q.shape[1], keys.shape[1]
        out = np.empty((n, self.n_head, self.head_dim), dtype=np.float32)
        keys_t = keys.transpose(0, 2, 1)
        for first in range(0, n, QUERY_BLOCK):
            last = min(n, first + QUERY_BLOCK)
            scores = q[:, first:last] @ keys_t  # [H, rows, end]
            scores *= self.scale
            if last - first > 1 or start + last < end:  # query i sees positions <= start + i
                scores += np.triu(
                    np.full((last - first, end), -np.inf, np.float32), start + first + 1
                )
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            out[first:last] = (scores @ values).transpose(1, 0, 2)
        return out

    def _norm(self, x: np.ndarray, weights: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """LayerNorm over the last axis, as torch computes it (biased variance)."""
        centered = x - x.mean(axis=-1, keepdims=True)
        var = np.mean(np.square(centered), axis=-1, keepdims=True)
        centered *= 1.0 / np.sqrt(var + self.eps)
        centered *= weights[0]
        centered += weights[1]
        return centered


def _gelu(x: np.ndarray) -> np.ndarray:
    """GPT-2's tanh GELU (transformers' gelu_new), in place on `x`."""
    inner = x * x
    inner *= 0.044715
    inner += 1.0
    inner *= x
    inner *= GELU_C
    np.tanh(inner, out=inner)
    inner += 1.0
    inner *= 0.5
    x *= inner
    return x

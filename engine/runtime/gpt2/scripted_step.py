"""One decode step of an int8 GPT-2 as a TorchScript function.

A quantized decode step is a few fbgemm matmuls and some 200 small ops; run from Python, each
op pays for argument parsing and a new Python tensor object, a real share of every step
(bench/generate.py shows the difference). TorchScript runs the same ops, in the same order, from
C++: the logits are bit-identical to forward.py's Python
loop (tests/engine/test_quantize.py checks it).

torch.compile, the successor torch recommends, cannot trace fbgemm's packed weights (TorchBind
objects), so this uses torch.jit.script, deprecated but present in the torch release scribe pins.
When scripting is unavailable or fails, `build` returns None and the Python loop runs instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from scribe.engine.runtime.gpt2.quantize import REDUCE_RANGE, FbgemmLinear

Step = Callable[[int, int], torch.Tensor]


def _decode_step(
    token: int,
    start: int,
    wte: torch.Tensor,
    wpe: torch.Tensor,
    norms: torch.Tensor,
    kv: torch.Tensor,
    attn: list[torch.classes.quantized.LinearPackedParamsBase],
    attn_proj: list[torch.classes.quantized.LinearPackedParamsBase],
    fc: list[torch.classes.quantized.LinearPackedParamsBase],
    mlp_proj: list[torch.classes.quantized.LinearPackedParamsBase],
    head: torch.classes.quantized.LinearPackedParamsBase,
    heads: int,
    eps: float,
    scale: float,
    reduce_range: bool,
) -> torch.Tensor:
    """The last-position logits for `token` at position `start`; the same ops as
    FastGPT2.forward for one token (norms: [layer, ln_1 w/b, ln_2 w/b, C]; the last row ln_f)."""
    c = wte.shape[1]
    d = c // heads
    end = start + 1
    x = (wte[token] + wpe[start]).view(1, c)
    for i in range(len(attn)):
        h = F.layer_norm(x, [c], norms[i, 0], norms[i, 1], eps)
        qkv = torch.ops.quantized.linear_dynamic(h, attn[i], reduce_range).split(c, dim=1)
        kv[i, 0, :, start:end] = qkv[1].view(1, heads, d).transpose(0, 1)
        kv[i, 1, :, start:end] = qkv[2].view(1, heads, d).transpose(0, 1)
        a = F.scaled_dot_product_attention(
            qkv[0].view(1, 1, heads, d).transpose(1, 2),
            kv[i, 0:1, :, :end],
            kv[i, 1:2, :, :end],
            scale=scale,
        )
        a = a.transpose(1, 2).reshape(1, c)
        x = torch.ops.quantized.linear_dynamic(a, attn_proj[i], reduce_range) + x
        h = F.layer_norm(x, [c], norms[i, 2], norms[i, 3], eps)
        h = F.gelu(torch.ops.quantized.linear_dynamic(h, fc[i], reduce_range), approximate="tanh")
        x = x + torch.ops.quantized.linear_dynamic(h, mlp_proj[i], reduce_range)
    last = norms.shape[0] - 1
    h = F.layer_norm(x, [c], norms[last, 0], norms[last, 1], eps)
    return torch.ops.quantized.linear_dynamic(h, head, reduce_range)[0]


_scripted: Any = None


def _script() -> Any:
    global _scripted
    if _scripted is None:
        with warnings.catch_warnings():  # the deprecation notice, once per process
            warnings.simplefilter("ignore")
            _scripted = torch.jit.script(_decode_step)
    return _scripted


def build(fast: Any) -> Step | None:
    """A `step(token, start)` for FastGPT2 `fast`, or None when its linears are not all fbgemm
    int8 (fp32 and bf16 run other kernels) or TorchScript is unavailable."""
    linears = [fast.head] + [
        lin for b in fast.blocks for lin in (b.attn, b.attn_proj, b.fc, b.mlp_proj)
    ]
    if not all(isinstance(lin, FbgemmLinear) for lin in linears):
        return None
    try:
        scripted = _script()
    except Exception:  # noqa: BLE001 - any failure to script means: keep the Python loop
        return None
    rows = [torch.stack([*b.ln1, *b.ln2]) for b in fast.blocks]
    final = torch.stack([*fast.ln_f, *fast.ln_f])
    norms = torch.stack([*rows, final])
    args = (
        fast.wte,
        fast.wpe,
        norms,
        fast.kv,
        [b.attn.packed for b in fast.blocks],
        [b.attn_proj.packed for b in fast.blocks],
        [b.fc.packed for b in fast.blocks],
        [b.mlp_proj.packed for b in fast.blocks],
        fast.head.packed,
        fast.n_head,
        float(fast.eps),
        float(fast.scale),
        REDUCE_RANGE,
    )

    def step(token: int, start: int) -> torch.Tensor:
        return scripted(token, start, *args)

    return step

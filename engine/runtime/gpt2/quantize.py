"""Weight precisions for the fast GPT-2 path: fp32, bf16, int8 and int4 weights (cached on disk
by ../derived_weights.py).

Quantization is weight-only in what is stored: int8 keeps one scale per output row; int4 keeps
one scale and zero point per group of 32 inputs, two weights a byte. What runs depends on the
kernels torch has for this CPU: on AVX2 the only fast integer matmul in torch is fbgemm's
(`quantized::linear_dynamic`, int8 weights x int8 activations quantized per call, int32
accumulation), so int8 runs there, and int4 weights are expanded to that int8 kernel at load
(torch's int4 CPU kernel is scalar without AVX-512). The runtime caches the stored forms on disk
(../derived_weights.py), so a second start does not re-quantize.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F

Linear = Callable[[torch.Tensor], torch.Tensor]
Quantized = dict[str, torch.Tensor]

INT4_GROUP = 32
# fbgemm's AVX2 kernel sums pairs of uint8 x int8 products in int16; 8-bit activations can
# saturate it and cost perplexity, 7-bit ones ("reduce_range") cannot
# (tests/engine/test_quantize_quality.py holds the gate).
REDUCE_RANGE = True


# -- quantizing (weights as [out, in], F.linear's layout) ---------------------------------------
def quantize_int8(weight: torch.Tensor) -> Quantized:
    """Symmetric int8 with one scale per output row."""
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
    q = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return {"q": q.contiguous(), "scale": scale.float()}


def quantize_int4(weight: torch.Tensor, group: int = INT4_GROUP) -> Quantized:
    """Asymmetric 4-bit in groups of `group` inputs: w ~ q * scale + low, q in 0..15."""
    out_f, in_f = weight.shape
    group = math.gcd(in_f, group)  # a smaller group when the size is not a multiple of 32
    g = weight.reshape(out_f, in_f // group, group)
    low, high = g.amin(dim=2), g.amax(dim=2)
    scale = ((high - low) / 15).clamp(min=1e-12)
    q = torch.round((g - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.uint8)
    q = q.reshape(out_f, in_f)
    packed = q[:, 0::2] | (q[:, 1::2] << 4)
    return {"packed": packed.contiguous(), "scale": scale.float(), "low": low.float()}


def dequantize_int4(data: Quantized) -> torch.Tensor:
    packed = data["packed"]
    out_f = packed.shape[0]
    q = torch.stack([packed & 15, packed >> 4], dim=2).reshape(out_f, -1).float()
    groups = data["scale"].shape[1]
    g = q.reshape(out_f, groups, -1) * data["scale"][..., None] + data["low"][..., None]
    return g.reshape(out_f, -1)


ROW_BLOCK = 4096  # rows converted at a time: a 50257-row LM head makes no full-size temporaries


def _join(parts: list[Quantized]) -> Quantized:
    """Row blocks converted apart, joined: the same result, since int8 scales are per row and
    int4 groups lie within a row."""
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def int4_to_int8(data: Quantized) -> Quantized:
    """int4 weights re-quantized to int8 rows for the int8 kernel."""
    blocks = range(0, data["packed"].shape[0], ROW_BLOCK)
    return _join(
        [
            quantize_int8(dequantize_int4({k: v[i : i + ROW_BLOCK] for k, v in data.items()}))
            for i in blocks
        ]
    )


def quantize(precision: str, weight: torch.Tensor) -> Quantized:
    """What is stored on disk for one [out, in] weight at `precision`."""
    if precision in ("int8", "int4"):
        convert = quantize_int8 if precision == "int8" else quantize_int4
        return _join([convert(weight[i : i + ROW_BLOCK]) for i in range(0, len(weight), ROW_BLOCK)])
    if precision == "bf16":
        return {"w": weight.to(torch.bfloat16).contiguous()}
    raise ValueError(f"{precision} needs no quantized weights")


def quantize_weights(
    precision: str, weights: Mapping[str, torch.Tensor], linears: Iterable[tuple[str, bool]]
) -> dict[str, Quantized]:
    """The stored form of every linear (name, transposed) of a model: Conv1D weights are
    [in, out], the tied LM head is already [out, in]."""
    out = {}
    for name, transposed in linears:
        weight = weights[f"{name}.weight"]
        out[name] = quantize(precision, weight if transposed else weight.t())
    return out


def int8_kernel_available() -> bool:
    """torch's fbgemm int8 kernel exists on this CPU."""
    return "fbgemm" in torch.backends.quantized.supported_engines


# -- running ------------------------------------------------------------------------------------
class FbgemmLinear:
    """fbgemm's int8 linear: activations are quantized per call, weights per output row.
    `packed` is fbgemm's prepacked weight, which scripted_step.py calls directly."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> None:
        zero = torch.zeros(q.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are flagged legacy; fbgemm needs them
            warnings.simplefilter("ignore")
            qweight = torch._make_per_channel_quantized_tensor(q, scale.double(), zero, 0)
            self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _LINEAR_DYNAMIC(x, self.packed, REDUCE_RANGE)


# The C++ function itself: the Python op wrapper checks every call for fake script objects (the
# packed weight is one), about 4 us a call, 49 calls a token.
_LINEAR_DYNAMIC = getattr(
    torch.ops.quantized.linear_dynamic, "_op", torch.ops.quantized.linear_dynamic
)


def make_linear(
    precision: str,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    quantized: Quantized | None = None,
    transposed: bool = False,
) -> Linear:
    """A function x [n, in] -> [n, out]. `weight` is Conv1D's [in, out] unless `transposed`
    ([out, in], as the tied LM head); `quantized` is its stored form (computed from `weight`
    when None; then `weight` may be None)."""
    if precision == "fp32":
        if transposed:  # the LM head: exactly what transformers runs
            return lambda x: F.linear(x, weight, bias)
        if bias is None:
            return lambda x: torch.mm(x, weight)
        return lambda x: torch.addmm(bias, x, weight)  # Conv1D's own op, for identical numerics
    if quantized is None:
        assert weight is not None
        quantized = quantize(precision, weight if transposed else weight.t())
    if precision == "bf16":
        w16 = quantized["w"]
        b16 = None if bias is None else bias.to(torch.bfloat16)

        def bf16_linear(x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 1:  # prefill: fp32 GEMM on upcast weights beats emulated bf16 (AVX2)
                return F.linear(x, w16.float(), bias)
            return F.linear(x.to(torch.bfloat16), w16, b16).float()

        return bf16_linear
    if precision == "int4":  # expanded to the int8 kernel: no fast int4 matmul in torch on AVX2
        quantized = int4_to_int8(quantized)
    if int8_kernel_available():
        return FbgemmLinear(quantized["q"], quantized["scale"], bias)
    w = quantized["q"].float() * quantized["scale"][:, None]  # no int8 kernel: run dequantized
    return lambda x: F.linear(x, w, bias)

"""Weight precisions for the fast GPT-2 path: fp32, bf16, int8 and int4 weights (cached on disk
by ../derived_weights.py).

Quantization is weight-only in what is stored: int8 keeps one scale per output row; int4 is the
one format both int4 backends run (below: 4-bit blocks whose scales are a row scale times a
small integer step, an 8-bit LM head). What runs depends on the kernels torch has for this CPU:
on AVX2 the only fast integer matmul in torch is fbgemm's (`quantized::linear_dynamic`, int8
weights x int8 activations quantized per call, int32 accumulation), so int8 runs there, and int4
weights are widened to that int8 kernel at load, exactly (torch's int4 CPU kernel is scalar
without AVX-512); onnx_graph.py packs the same blocks for ONNX Runtime's 4-bit kernel. The
runtime caches the stored forms on disk (../derived_weights.py), so a second start does not
re-quantize.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F

Linear = Callable[[torch.Tensor], torch.Tensor]
Quantized = dict[str, torch.Tensor]

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


# -- int4: the one format both int4 backends run (this CPU's torch, ../onnx_int4.py) ----------
# Block matrices: symmetric 4-bit blocks along the input dimension. A block's scale is its row's
# scale times a signed step of 1..15, so a block's values times its step fit int8 (|q * step| <=
# 120): torch's int8 kernel and ONNX Runtime's 4-bit kernel run the very same weights.
BLOCK = 128  # values per scale: blocks of 128 decode 1.5x faster than 32 on ONNX Runtime (x86)
# Below this width a model is small enough that speed hardly matters, and a block of 128 spans
# so much of a row that 4-bit error shows (the 256-wide embedded model: +4.7% perplexity, vs
# +1.7% with blocks of 32).
SMALL_WIDTH, SMALL_BLOCK = 768, 32
MAX_STEP = 15


def block_for(width: int) -> int:
    """Values per scale in the int4 block matrices of a model `width` wide."""
    return SMALL_BLOCK if width < SMALL_WIDTH else BLOCK


def _short_mantissa(x: torch.Tensor) -> torch.Tensor:
    """`x` (positive fp32) rounded up to 16 significant bits, so that a row scale times any step,
    and times any int8 value, is exact in fp32: every kernel dequantizes to the same numbers."""
    return ((x.view(torch.int32) + 0xFF) & ~0xFF).view(torch.float32)


def quantize_int4(weight: torch.Tensor, block: int = BLOCK) -> Quantized:
    """[out, in] in symmetric 4-bit blocks of `block` inputs (the last zero-padded): w ~ q *
    step * scale, q in -8..7 stored as q + 8 two a byte (the lower nibble first, as ONNX
    Runtime's MatMulNBits reads them), step in +-1..15 per block, scale per row."""
    out_f, in_f = weight.shape
    blocks = -(-in_f // block)
    w = F.pad(weight.float(), (0, blocks * block - in_f)).reshape(out_f, blocks, block)
    # ONNX Runtime's own rule for a block: the value of largest magnitude maps to -8 (a signed
    # scale), the one level the other sign lacks.
    peak = w.gather(2, w.abs().argmax(2, keepdim=True)).squeeze(2)
    need = peak / -8
    scale = _short_mantissa((need.abs().amax(dim=1) / MAX_STEP).clamp(min=1e-12))
    # Steps rounded away from zero: no block's scale falls short of its need, so no peak is
    # clipped. Clipped peaks cost perplexity far beyond their squared error (the embedded
    # model: +2.2% in torch and ONNX Runtime like this; +3.5% and +4.3% when row scales up to
    # 10% short, chosen for the least squared error, clip the widest blocks).
    step = (need.abs() / scale[:, None]).ceil().clamp(1, MAX_STEP)
    step = torch.where(need < 0, -step, step)
    q = torch.round(w / (step * scale[:, None])[..., None]).clamp(-8, 7)
    nibbles = (q.reshape(out_f, -1) + 8).to(torch.uint8)
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    return {"packed": packed.contiguous(), "step": step.to(torch.int8), "scale": scale}


def int4_values(data: Quantized) -> torch.Tensor:
    """The 4-bit values q of block matrix `data`, [out, blocks * block] (padding included)."""
    packed = data["packed"]
    q = torch.stack([packed & 15, packed >> 4], dim=2).reshape(packed.shape[0], -1)
    return q.to(torch.int8) - 8


def widen_int4(data: Quantized, width: int) -> Quantized:
    """int4 weights as int8 rows with the row scales, exactly the same values (q * step): what
    the int8 kernels run. The 8-bit LM head is int8 rows already. `width`: the inputs."""
    if "packed" not in data:
        return data
    q = int4_values(data).to(torch.int16)
    block = q.shape[1] // data["step"].shape[1]
    steps = data["step"].to(torch.int16).repeat_interleave(block, dim=1)
    return {"q": (q * steps)[:, :width].to(torch.int8).contiguous(), "scale": data["scale"]}


def input_width(name: str, stored: Mapping[str, Quantized], width: int) -> int:
    """The inputs of linear `name` in a GPT-2 `width` wide, from the stored forms (reading its
    float weight's shape would load the weight): the MLP's projection takes its expansion's
    outputs, every other linear the model's width."""
    if name.endswith(".mlp.c_proj"):
        return stored[name.removesuffix("c_proj") + "c_fc"]["scale"].shape[0]
    return width


def dequantize(data: Quantized, width: int) -> torch.Tensor:
    """The fp32 weights [out, width] an int8 or int4 stored form stands for."""
    rows = widen_int4(data, width)
    return rows["q"].float() * rows["scale"][:, None]


ROW_BLOCK = 4096  # rows converted at a time: a 50257-row LM head makes no full-size temporaries


def _join(parts: list[Quantized]) -> Quantized:
    """Row blocks converted apart, joined: the same result, since every scale and block lies
    within a row."""
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def quantize(precision: str, weight: torch.Tensor, block: int = BLOCK) -> Quantized:
    """What is stored on disk for one [out, in] weight at `precision` (int4: in `block`s)."""
    if precision in ("int8", "int4"):
        rows = [weight[i : i + ROW_BLOCK] for i in range(0, len(weight), ROW_BLOCK)]
        if precision == "int8":
            return _join([quantize_int8(part) for part in rows])
        return _join([quantize_int4(part, block) for part in rows])
    if precision == "bf16":
        return {"w": weight.to(torch.bfloat16).contiguous()}
    raise ValueError(f"{precision} needs no quantized weights")


def quantize_weights(
    precision: str, weights: Mapping[str, torch.Tensor], linears: Iterable[tuple[str, bool]]
) -> dict[str, Quantized]:
    """The stored form of every linear (name, transposed) of a model: Conv1D weights are
    [in, out], the tied LM head is already [out, in]. At int4 the head has 8 bits (int8 rows),
    as llama.cpp keeps its output tensor above 4 bits: on the embedded default model, where the
    head is most of the weights, a 4-bit head raises held-out perplexity 6.6%, an 8-bit one 1.9%.
    """
    block = block_for(weights["wte.weight"].shape[1])
    out = {}
    for name, transposed in linears:
        weight = weights[f"{name}.weight"]
        stored = "int8" if precision == "int4" and transposed else precision
        out[name] = quantize(stored, weight if transposed else weight.t(), block)
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
    """A function x [n, in] -> [n, out] at fp32, bf16 or int8 (int4 runs as its exact int8
    widening, widen_int4). `weight` is Conv1D's [in, out] unless `transposed` ([out, in], as
    the tied LM head); `quantized` is its stored form (computed from `weight` when None; then
    `weight` may be None)."""
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
    if int8_kernel_available():
        return FbgemmLinear(quantized["q"], quantized["scale"], bias)
    w = quantized["q"].float() * quantized["scale"][:, None]  # no int8 kernel: run dequantized
    return lambda x: F.linear(x, w, bias)

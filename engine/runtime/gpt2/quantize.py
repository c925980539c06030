"""Weight precisions for the fast GPT-2 path: fp32, bf16, int8 and int4 weights, cached on disk.

Quantization is weight-only in what is stored: int8 keeps one scale per output row; int4 keeps
one scale and zero point per group of 32 inputs, two weights a byte. What runs depends on the
kernels torch has for this CPU: on AVX2 the only fast integer matmul in torch is fbgemm's
(`quantized::linear_dynamic`, int8 weights x int8 activations quantized per call, int32
accumulation), so int8 runs there, and int4 weights are expanded to that int8 kernel at load
(torch's int4 CPU kernel is scalar without AVX-512). Quantized tensors are saved as safetensors
next to the model, or under the cache dir when that folder is read-only, so a second start does
not re-quantize.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from scribe.engine import paths
from scribe.engine.runtime.precision import int8_kernel_available

Linear = Callable[[torch.Tensor], torch.Tensor]
Quantized = dict[str, torch.Tensor]

INT4_GROUP = 32
FORMAT_VERSION = "1"
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


# -- caching on disk ----------------------------------------------------------------------------
def cache_file(model_dir: Path, precision: str) -> Path:
    """Next to the model when that folder is writable, else under the cache dir (also for the
    model embedded in scribe's package, whose folder belongs to the installation)."""
    name = f"scribe-{precision}.safetensors"
    inside_package = Path(__file__).parents[2].resolve() in model_dir.resolve().parents
    if os.access(model_dir, os.W_OK) and not inside_package:  # not the embedded model's folder
        return model_dir / name
    key = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return paths.cache_dir() / "quantized" / key / name


def fingerprint(model_dir: Path) -> str:
    """Changes when the model's weights change, so a stale cache is never used."""
    parts = [FORMAT_VERSION]
    for file in sorted(model_dir.glob("model*.safetensors")):
        stat = file.stat()
        parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


# The parts each precision stores per weight, with their dtypes (see quantize()).
STORED_PARTS: dict[str, dict[str, torch.dtype]] = {
    "int8": {"q": torch.int8, "scale": torch.float32},
    "int4": {"packed": torch.uint8, "scale": torch.float32, "low": torch.float32},
    "bf16": {"w": torch.bfloat16},
}


def load_cached(model_dir: Path, precision: str) -> dict[str, Quantized] | None:
    """The cached quantized weights, or None when there are none or they cannot be trusted
    (a stale fingerprint, a truncated or garbage file, wrong parts): the cache is derived from
    the model, so the caller quantizes again and overwrites it rather than failing."""
    from safetensors import SafetensorError, safe_open

    file = cache_file(model_dir, precision)
    if not file.exists():
        return None
    try:
        with safe_open(str(file), framework="pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != fingerprint(model_dir):
                return None
            flat = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return None  # unreadable cache: quantize again
    return _unflatten(flat, STORED_PARTS.get(precision, {}))


def _unflatten(
    flat: dict[str, torch.Tensor], parts: dict[str, torch.dtype]
) -> dict[str, Quantized] | None:
    """{"h.0.attn.c_attn:q": t, ...} as {"h.0.attn.c_attn": {"q": t, ...}}, or None unless
    every weight has exactly `parts`, with their dtypes, a 2-D matrix first and matching rows."""
    matrix = next(iter(parts), "")
    out: dict[str, Quantized] = {}
    for key, tensor in flat.items():
        name, _, part = key.rpartition(":")
        if not name or parts.get(part) != tensor.dtype:
            return None
        out.setdefault(name, {})[part] = tensor
    for data in out.values():
        if set(data) != set(parts) or data[matrix].dim() != 2:
            return None
        if any(t.dim() == 0 or t.shape[0] != data[matrix].shape[0] for t in data.values()):
            return None
    return out or None


def save_cached(model_dir: Path, precision: str, tensors: dict[str, Quantized]) -> Path | None:
    """Writes the cache atomically; returns None when neither place is writable."""
    from safetensors.torch import save_file

    flat = {f"{name}:{part}": t for name, parts in tensors.items() for part, t in parts.items()}
    file = cache_file(model_dir, precision)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        save_file(flat, str(tmp), metadata={"fingerprint": fingerprint(model_dir)})
        tmp.replace(file)
    except OSError:
        return None
    return file

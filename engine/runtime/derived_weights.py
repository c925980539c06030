"""Weights derived from a model's files, prepared before a backend opens: the quantized forms the
torch backend runs (one safetensors file per precision; int4's is also what the int4 ONNX graphs
are built from) and, under the same roof, the place of those graphs (onnx_int4.py). Each lives
next to the model, or under the cache dir when that folder is read-only or belongs to scribe's
installation, and carries a fingerprint of the weights it came from (files/derived.py): a stale
or damaged one is built again, never an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from scribe.engine import paths
from scribe.engine.files.atomic import atomic_path
from scribe.engine.files.derived import fingerprint, short_key
from scribe.engine.runtime.model_files import weight_files

if TYPE_CHECKING:  # `scribe models` places caches without importing torch
    import torch

    from scribe.engine.runtime.gpt2.quantize import Quantized

# In every cache's fingerprint: 3 is the one int4 format (gpt2/quantize.py), shared with the
# int4 graphs.
FORMAT_VERSION = "quantized-3"
PACKAGE_DIR = Path(__file__).parents[1].resolve()  # scribe's installed engine


def cache_file(model_dir: Path, precision: str) -> Path:
    """Next to the model when that folder is writable, else under the cache dir (also for the
    model embedded in scribe's package, whose folder belongs to the installation)."""
    name = f"scribe-{precision}.safetensors"
    inside_package = PACKAGE_DIR in model_dir.resolve().parents
    if os.access(model_dir, os.W_OK) and not inside_package:
        return model_dir / name
    return paths.cache_dir() / "quantized" / short_key(str(model_dir.resolve())) / name


def weights_fingerprint(model_dir: Path, version: str = FORMAT_VERSION) -> str:
    """Changes when the model's weights change, so a stale derived file is never used."""
    return fingerprint(weight_files(model_dir), version)


def _stored_parts() -> dict[str, list[dict[str, torch.dtype]]]:
    """The parts each precision may store per weight, with their dtypes (gpt2/quantize.py):
    int4's block matrices, and its LM head in int8 rows."""
    import torch

    int8 = {"q": torch.int8, "scale": torch.float32}
    return {
        "int8": [int8],
        "int4": [{"packed": torch.uint8, "step": torch.int8, "scale": torch.float32}, int8],
        "bf16": [{"w": torch.bfloat16}],
    }


def load_cached(model_dir: Path, precision: str) -> dict[str, Quantized] | None:
    """The cached quantized weights, or None when there are none or they cannot be trusted
    (a stale fingerprint, a truncated or garbage file, wrong parts): the caller quantizes
    again and overwrites it rather than failing."""
    from safetensors import SafetensorError, safe_open

    file = cache_file(model_dir, precision)
    if not file.exists():
        return None
    try:
        with safe_open(str(file), framework="pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != weights_fingerprint(model_dir):
                return None
            flat = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, ValueError, RuntimeError, SafetensorError):
        return None  # unreadable cache: quantize again
    return _unflatten(flat, _stored_parts().get(precision, []))


def _unflatten(
    flat: dict[str, torch.Tensor], kinds: list[dict[str, torch.dtype]]
) -> dict[str, Quantized] | None:
    """{"h.0.attn.c_attn:q": t, ...} as {"h.0.attn.c_attn": {"q": t, ...}}, or None unless
    every weight has exactly the parts of one of `kinds`, with their dtypes, a 2-D matrix first
    and matching rows."""
    out: dict[str, Quantized] = {}
    for key, tensor in flat.items():
        name, _, part = key.rpartition(":")
        if not name:
            return None
        out.setdefault(name, {})[part] = tensor
    for data in out.values():
        parts = next((p for p in kinds if p == {k: t.dtype for k, t in data.items()}), None)
        if parts is None or data[next(iter(parts))].dim() != 2:
            return None
        rows = data[next(iter(parts))].shape[0]
        if any(t.dim() == 0 or t.shape[0] != rows for t in data.values()):
            return None
    return out or None


def save_cached(
    model_dir: Path, precision: str, tensors: dict[str, Quantized], built_from: str
) -> Path | None:
    """Writes the cache whole, stamped `built_from` (weights_fingerprint read before
    quantizing); returns None when the weights changed since (a cache of the old weights would
    pass for the new ones) or neither place is writable."""
    from safetensors.torch import save_file

    if weights_fingerprint(model_dir) != built_from:
        return None
    flat = {f"{name}:{part}": t for name, parts in tensors.items() for part, t in parts.items()}
    file = cache_file(model_dir, precision)
    try:
        with atomic_path(file) as part:
            save_file(flat, str(part), metadata={"fingerprint": built_from})
    except OSError:
        return None
    return file


def quantized_weights(
    model_dir: Path,
    precision: str,
    weights: Mapping[str, torch.Tensor],
    linears: list[tuple[str, bool]],
) -> dict[str, Quantized]:
    """The stored form of every linear (gpt2/quantize.py) from the cache, else quantized now
    and cached for the next start, stamped with the weights' fingerprint as it was before
    quantizing (weights changed meanwhile leave it uncached). The int4 form is one for both
    int4 backends: torch widens it, the ONNX graphs are built from it."""
    from scribe.engine.runtime.gpt2.quantize import quantize_weights

    cached = load_cached(model_dir, precision)
    if cached is not None and all(name in cached for name, _ in linears):
        return cached
    built_from = weights_fingerprint(model_dir)
    quantized = quantize_weights(precision, weights, linears)
    save_cached(model_dir, precision, quantized, built_from)
    return quantized

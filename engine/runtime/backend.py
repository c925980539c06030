"""Which code runs a loaded model's weights: the one decision table, and the protocol every
backend keeps.

| model                                | precision        | backend                           |
|--------------------------------------|------------------|-----------------------------------|
| plain GPT-2 (files or transformers') | fp32, bf16, int8 | torch (torch_backend.py)          |
| plain GPT-2 in a folder, onnxruntime | int4             | ONNX Runtime (onnx_int4.py) where |
|                                      |                  | its kernels take the shape        |
| plain GPT-2 otherwise                | int4             | torch, the same int4 weights      |
|                                      |                  | widened to int8, exactly          |
| anything else                        | (ignored)        | transformers_backend.py           |

int4 is one format on both of its backends, cached once (derived_weights.py).

On the torch backend, int8 runs fbgemm's kernel where this CPU has it, else dequantized
(gpt2/quantize.py). Derived weights (quantized caches, ONNX graphs) are prepared here, before the
backend object is made; the backend only decodes. A fallback the user did not ask for (int4 on
torch for a shape ONNX Runtime cannot run) is logged as a warning: the engine never prints, a
command shows it on stderr and a server in its log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

import torch

from scribe.engine.runtime import derived_weights, onnx_int4, threads
from scribe.engine.runtime.gpt2 import forward
from scribe.engine.runtime.gpt2.checkpoint import Shape
from scribe.engine.runtime.gpt2.quantize import Quantized, quantize_weights
from scribe.engine.runtime.models import LoadedModel
from scribe.engine.runtime.torch_backend import TorchBackend
from scribe.engine.runtime.transformers_backend import TransformersBackend

TORCH, ONNX_INT4, TRANSFORMERS = "torch", "onnx-int4", "transformers"
log = logging.getLogger(__name__)


class Backend(Protocol):
    """A model's forward pass over its own KV cache, with prefix reuse."""

    precision: str  # what the stream reports: fp32, bf16, int8, int4 or "transformers"
    own_threads: bool  # runs on a thread pool of its own (torch then only samples)

    def prefill(self, ids: list[int]) -> tuple[int, torch.Tensor]:
        """Bring the cache to `ids`, feeding only what is not cached: (reused, last logits)."""
        ...

    def feed(self, new_ids: list[int]) -> torch.Tensor:
        """New tokens on top of the cache: the last position's logits."""
        ...

    def reset(self) -> None:
        """Forget the cache: the next prefill starts from nothing."""
        ...


def choose(loaded: LoadedModel) -> str:
    """The decision table above: TORCH, ONNX_INT4 or TRANSFORMERS."""
    if loaded.weights is None and not forward.supports(loaded.model):
        return TRANSFORMERS
    if _onnx_int4_wanted(loaded) and onnx_int4.unsupported(loaded.config) is None:
        return ONNX_INT4
    return TORCH


def open_backend(loaded: LoadedModel) -> Backend:
    """The backend `choose` picks, its derived weights prepared (and cached) first."""
    kind = choose(loaded)
    if kind == TRANSFORMERS:
        return TransformersBackend(loaded.model)
    weights = loaded.weights if loaded.weights is not None else forward.model_weights(loaded.model)
    if kind == ONNX_INT4:
        return onnx_int4.open_backend(
            loaded.path, weights, loaded.config, threads.available_cores()
        )
    if _onnx_int4_wanted(loaded):
        log.warning(
            "%s: int4 runs widened to int8 on torch: %s, which ONNX Runtime's int4 kernels need",
            loaded.path,
            onnx_int4.unsupported(loaded.config),
        )
    shape = Shape.from_config(loaded.config)
    quantized = None
    if loaded.precision != "fp32":
        quantized = _quantized(loaded, weights, shape)
    return TorchBackend(forward.FastGPT2(shape, weights, loaded.precision, quantized))


def _onnx_int4_wanted(loaded: LoadedModel) -> bool:
    return loaded.precision == "int4" and _has_folder(loaded) and onnx_int4.available()


def _quantized(
    loaded: LoadedModel, weights: Mapping[str, torch.Tensor], shape: Shape
) -> dict[str, Quantized]:
    """The stored form of every linear: from the cache beside the model, else quantized now
    and cached for the next start, stamped with the weights' fingerprint as it was before
    quantizing (weights changed meanwhile leave it uncached)."""
    linears = forward.linears(shape)
    if not _has_folder(loaded):
        return quantize_weights(loaded.precision, weights, linears)
    return derived_weights.quantized_weights(loaded.path, loaded.precision, weights, linears)


def _has_folder(loaded: LoadedModel) -> bool:
    """A model folder of its own to cache derived weights for (a merged adapter has none)."""
    return (loaded.path / "config.json").exists()

"""Which code runs a loaded model's weights: the one decision table, and the protocol every
backend keeps.

| model                                | precision        | backend                           |
|--------------------------------------|------------------|-----------------------------------|
| plain GPT-2 from its fp16/fp32 files,| fp32             | numpy (numpy_backend.py)          |
| at most NUMPY_MAX_PARAMS parameters  |                  |                                   |
| plain GPT-2 (files or transformers') | fp32, bf16, int8 | torch (torch_backend.py)          |
| plain GPT-2 in a folder, onnxruntime | int4             | ONNX Runtime (onnx_int4.py) where |
|                                      |                  | its kernels take the shape        |
| plain GPT-2 otherwise                | int4             | torch, the same int4 weights      |
|                                      |                  | widened to int8, exactly          |
| anything else                        | (ignored)        | transformers_backend.py           |

int4 is one format on both of its backends, cached once (derived_weights.py).

The numpy row is the fast start: importing torch costs about 1.8 s on a 2-core machine, more
than a small model needs to load and answer. On one thread numpy's fp32 is as fast as torch's
(measured on 2 busy cores: the embedded model 3.6 ms a token against 5.3, a 1000-token prompt
0.33 s against 0.30; GPT-2 124M's shape 35 ms against 43, 2.8 s either way). "auto" gives fp32
below precision.py's int8 threshold of 20M parameters, so a small model at "auto" lands here;
from there "auto" means int8, whose fbgemm kernel decodes GPT-2 124M three times as fast
(14 ms a token), and NUMPY_MAX_PARAMS ends the numpy row at the same size: a bigger model at
an explicit fp32 keeps torch, whose threads speed up a long prefill on an idle machine where
numpy runs one BLAS thread (blas_threads.py says why).

On the torch backend, int8 runs fbgemm's kernel where this CPU has it, else dequantized
(gpt2/quantize.py). Derived weights (quantized caches, ONNX graphs) are prepared here, before the
backend object is made; the backend only decodes. A fallback the user did not ask for (int4 on
torch for a shape ONNX Runtime cannot run) is logged as a warning: the engine never prints, a
command shows it on stderr and a server in its log. torch, transformers and onnxruntime are
imported only for the backend chosen: the numpy row never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from scribe.engine.runtime import derived_weights, threads
from scribe.engine.runtime.gpt2.checkpoint import Shape, Weights
from scribe.engine.runtime.models import LoadedModel

if TYPE_CHECKING:
    import torch

    from scribe.engine.runtime.gpt2.quantize import Quantized

NUMPY, TORCH, ONNX_INT4, TRANSFORMERS = "numpy", "torch", "onnx-int4", "transformers"
# The largest plain GPT-2 the numpy backend runs (the docstring says why this size).
NUMPY_MAX_PARAMS = 20_000_000
log = logging.getLogger(__name__)


class Backend(Protocol):
    """A model's forward pass over its own KV cache, with prefix reuse."""

    precision: str  # what the stream reports: fp32, bf16, int8, int4 or "transformers"
    # The pool the decode loop sizes step by step (torch's); None: the backend sizes its own
    # (ONNX Runtime; numpy on one BLAS thread).
    threads: threads.ThreadPool | None

    def prefill(self, ids: list[int]) -> tuple[int, np.ndarray]:
        """Bring the cache to `ids`, feeding only what is not cached: (reused, last logits as
        a float32 [vocab] array)."""
        ...

    def feed(self, new_ids: list[int]) -> np.ndarray:
        """New tokens on top of the cache: the last position's logits (float32 [vocab])."""
        ...

    def reset(self) -> None:
        """Forget the cache: the next prefill starts from nothing."""
        ...


def choose(loaded: LoadedModel) -> str:
    """The decision table above: NUMPY, TORCH, ONNX_INT4 or TRANSFORMERS."""
    if loaded.weights is None:
        from scribe.engine.runtime.gpt2 import forward

        if not forward.supports(loaded.model):
            return TRANSFORMERS
    if _numpy_fits(loaded):
        return NUMPY
    if _onnx_int4_wanted(loaded):
        from scribe.engine.runtime import onnx_int4

        if onnx_int4.unsupported(loaded.config) is None:
            return ONNX_INT4
    return TORCH


def open_backend(loaded: LoadedModel) -> Backend:
    """The backend `choose` picks, its derived weights prepared (and cached) first."""
    kind = choose(loaded)
    if kind == NUMPY:
        from scribe.engine.runtime.gpt2.numpy_forward import NumpyGPT2
        from scribe.engine.runtime.numpy_backend import NumpyBackend

        shape = Shape.from_config(loaded.config)
        return NumpyBackend(NumpyGPT2.from_files(shape, loaded.weights.files))
    if kind == TRANSFORMERS:
        from scribe.engine.runtime.transformers_backend import TransformersBackend

        return TransformersBackend(loaded.model)
    from scribe.engine.runtime import onnx_int4
    from scribe.engine.runtime.gpt2 import forward
    from scribe.engine.runtime.torch_backend import TorchBackend

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


def _numpy_fits(loaded: LoadedModel) -> bool:
    """The numpy row: a small plain GPT-2 read from fp16/fp32 files, at fp32."""
    from scribe.engine.runtime.gpt2.numpy_forward import READABLE_DTYPES

    weights = loaded.weights
    return (
        isinstance(weights, Weights)
        and loaded.precision == "fp32"
        and weights.parameters() <= NUMPY_MAX_PARAMS
        and weights.dtypes() <= READABLE_DTYPES
    )


def _onnx_int4_wanted(loaded: LoadedModel) -> bool:
    from scribe.engine.runtime import onnx_int4

    return loaded.precision == "int4" and _has_folder(loaded) and onnx_int4.available()


def _quantized(
    loaded: LoadedModel, weights: Mapping[str, torch.Tensor], shape: Shape
) -> dict[str, Quantized]:
    """The stored form of every linear: from the cache beside the model, else quantized now
    and cached for the next start, stamped with the weights' fingerprint as it was before
    quantizing (weights changed meanwhile leave it uncached)."""
    from scribe.engine.runtime.gpt2 import forward
    from scribe.engine.runtime.gpt2.quantize import quantize_weights

    linears = forward.linears(shape)
    if not _has_folder(loaded):
        return quantize_weights(loaded.precision, weights, linears)
    return derived_weights.quantized_weights(loaded.path, loaded.precision, weights, linears)


def _has_folder(loaded: LoadedModel) -> bool:
    """A model folder of its own to cache derived weights for (a merged adapter has none)."""
    return (loaded.path / "config.json").exists()

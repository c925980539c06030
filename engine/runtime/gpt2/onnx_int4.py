"""int4 GPT-2 on ONNX Runtime's MatMulNBits kernels: 4-bit weights that are read as 4 bits.

torch has no fast 4-bit matmul on x86 (its int4pack kernel is several times slower than fbgemm's
int8), so without this module int4 weights are widened to int8 at load. When onnxruntime is
installed, `--precision int4` instead runs the model as one ONNX graph: GPT-2's forward with an
explicit KV cache (past keys and values in, presents out), exported from scribe's own tensors
once, its matrices quantized by onnxruntime's MatMulNBits quantizer (symmetric 4-bit blocks of
`BLOCK` values, int8 activations), and cached beside the model like the other precisions (the
graph in `scribe-int4.onnx`, its tensors in `scribe-int4.onnx.data`, which ONNX Runtime maps). The
graph computes what gpt2/forward.py computes; tests/engine/test_quantize_quality.py holds the
perplexity gate.
"""

from __future__ import annotations

import importlib.util
import json
import math
import multiprocessing
import os
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from scribe.engine.runtime.gpt2 import quantize
from scribe.engine.runtime.kv_cache import KVState

BLOCK = 128  # values per 4-bit scale: larger blocks decode faster; the quality gate allows 128
ACCURACY = 4  # MatMulNBits' accuracy level 4: activations in int8, its fastest x86 kernel
OPSET = 17  # has LayerNormalization, which ORT runs as one fused kernel
FORMAT = f"1-b{BLOCK}-a{ACCURACY}"  # in the cache's fingerprint: a new layout builds again
FILE = "scribe-int4.onnx"
# Exporting reads every weight in fp32: for a model this big it runs in a child process, so
# the process that serves keeps the peak memory of the graph it runs, not of the export.
CHILD_BUILD_MIN_PARAMS = 50_000_000


def available() -> bool:
    """onnxruntime and the quantizer's own needs (onnx, onnx_ir) are installed."""
    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx", "onnx_ir"))


def cache_path(model_dir: Path) -> Path:
    return quantize.cache_file(model_dir, "int4").with_name(FILE)


def data_path(graph: Path) -> Path:
    """The file beside the graph that holds its tensors."""
    return graph.with_name(graph.name + ".data")


def _stamp(model_dir: Path) -> str:
    return f"{FORMAT}|{quantize.fingerprint(model_dir)}"


def cached(model_dir: Path) -> Path | None:
    """The cached graph when it was built from these weights with this layout."""
    path = cache_path(model_dir)
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    intact = path.exists() and data_path(path).exists()
    return path if intact and meta.get("built_from") == _stamp(model_dir) else None


def ensure(model_dir: Path, weights: Mapping[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """The int4 graph for the model in `model_dir`, built now when there is no good cache."""
    path = cached(model_dir)
    if path is not None:
        return path
    path = cache_path(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    c, layers = config["n_embd"], config["n_layer"]
    params = 12 * layers * c * c + (config["vocab_size"] + config["n_positions"]) * c
    if params >= CHILD_BUILD_MIN_PARAMS:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            pool.submit(_build_from_folder, str(model_dir), str(path)).result()
    else:
        build(weights, config, path)
    path.with_suffix(".json").write_text(json.dumps({"built_from": _stamp(model_dir)}))
    return path


def open_state(
    model_dir: Path, weights: Mapping[str, torch.Tensor], config: dict[str, Any], threads: int
) -> OrtKVState:
    """A session on the cached graph; a graph that ONNX Runtime cannot load (a torn write, a
    file damaged on disk) is scribe's own derived file, so it is built again, once."""
    path = ensure(model_dir, weights, config)
    try:
        return OrtKVState(path, threads)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        path.with_suffix(".json").unlink(missing_ok=True)
        return OrtKVState(ensure(model_dir, weights, config), threads)


def _build_from_folder(model_dir: str, target: str) -> None:
    """In the child: read the model's fp32 tensors the way generation does, then build."""
    from scribe.engine.runtime.gpt2 import forward
    from scribe.engine.runtime.models import load

    loaded = load(model_dir, precision="fp32")
    weights = loaded.weights if loaded.weights is not None else forward.model_weights(loaded.model)
    build(weights, loaded.config, Path(target))


def _tensors(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors the graph needs (no attention masks or a separate tied head)."""
    return {
        name: weights[name]
        for name in weights
        if not name.endswith((".attn.bias", ".attn.masked_bias")) and name != "lm_head.weight"
    }


def build(weights: Mapping[str, torch.Tensor], config: dict[str, Any], target: Path) -> None:
    """Export the fp32 graph to a scratch folder, quantize its MatMuls, and write `target`
    whole (a temp name, then a rename: a half-written graph is never loaded)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        fp32 = Path(scratch) / "model-fp32.onnx"
        export_fp32(weights, config, fp32)
        quantizer = MatMulNBitsQuantizer(
            str(fp32), bits=4, block_size=BLOCK, is_symmetric=True, accuracy_level=ACCURACY
        )
        quantizer.process()
        # The tensors in a file of their own, which ONNX Runtime maps instead of copying out of
        # the parsed graph: a lower peak and a faster load than one file.
        graph = Path(scratch) / target.name
        onnx.save_model(
            quantizer.model.model,
            str(graph),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_path(target).name,
            size_threshold=1024,
        )
        os.replace(Path(scratch) / data_path(target).name, data_path(target))
        os.replace(graph, target)  # last: a graph never names missing data


def cache_names(layers: int) -> tuple[list[str], list[str]]:
    """Past inputs and present outputs, key then value for each layer."""
    past = [f"past_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
    return past, [name.replace("past_", "present_") for name in past]


def export_fp32(weights: Mapping[str, torch.Tensor], config: dict[str, Any], path: Path) -> None:
    """GPT-2's forward with a KV cache as an fp32 ONNX graph: (input_ids, past k/v per layer)
    -> (last position's logits, present k/v per layer). Positions start at the past length, so
    one graph does the prefill (an empty past) and each one-token step."""
    weights = _tensors(weights)
    c, heads, layers = config["n_embd"], config["n_head"], config["n_layer"]
    eps = config.get("layer_norm_epsilon", 1e-5)

    class GPT2(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Buffers become initializers, which the quantizer needs (closure tensors would be
            # Constant nodes it does not touch).
            for name, value in weights.items():
                self.register_buffer(name.replace(".", "_"), value.float())

        def forward(self, input_ids: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
            w = {name: getattr(self, name.replace(".", "_")) for name in weights}
            past_len, t = past[0].shape[2], input_ids.shape[1]
            pos = torch.arange(past_len, past_len + t)
            x = w["wte.weight"][input_ids] + w["wpe.weight"][pos]
            hidden = torch.arange(past_len + t)[None, :] > pos[:, None]  # later keys
            present = []
            for i in range(layers):
                p = f"h.{i}."
                h = torch.nn.functional.layer_norm(
                    x, (c,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps
                )
                qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
                q, k, v = (
                    part.reshape(1, -1, heads, c // heads).transpose(1, 2)
                    for part in qkv.split(c, dim=2)
                )
                k = torch.cat([past[2 * i], k], dim=2)
                v = torch.cat([past[2 * i + 1], v], dim=2)
                present += [k, v]
                scores = (q @ k.transpose(2, 3)) / math.sqrt(c // heads)
                scores = scores.masked_fill(hidden, torch.finfo(torch.float32).min)
                a = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, -1, c)
                x = x + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
                h = torch.nn.functional.layer_norm(
                    x, (c,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps
                )
                h = h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
                h = torch.nn.functional.gelu(h, approximate="tanh")  # GPT-2's gelu_new
                x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
            x = torch.nn.functional.layer_norm(
                x[:, -1:], (c,), w["ln_f.weight"], w["ln_f.bias"], eps
            )
            # The tied LM head as its own MatMul (wte transposed), so it is quantized too.
            return (x @ w["wte.weight"].T, *present)

    past_names, present_names = cache_names(layers)
    ids = torch.zeros((1, 3), dtype=torch.int64)
    past = tuple(torch.zeros((1, heads, 2, c // heads)) for _ in past_names)
    axes = {"input_ids": {1: "new"}} | {
        **{name: {2: "past"} for name in past_names},
        **{name: {2: "total"} for name in present_names},
    }
    with torch.inference_mode():
        torch.onnx.export(
            GPT2(),
            (ids, *past),
            str(path),
            input_names=["input_ids", *past_names],
            output_names=["logits", *present_names],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # plain dynamic axes, no onnxscript
        )


class OrtKVState(KVState):
    """Prefix reuse (see KVState) over the graph's past/present tensors, which stay in ONNX
    Runtime's own buffers between steps."""

    def __init__(self, path: Path, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        super().__init__(model=None)
        self._np, self._ort = np, ort  # bound once: `feed` runs every token
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings would reach the editor's or the user's stderr
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._past_names = [i.name for i in self.session.get_inputs()][1:]
        self._outputs = [o.name for o in self.session.get_outputs()]
        _, heads, _, head_dim = self.session.get_inputs()[1].shape
        self._empty = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self.ids = []
        empty = self._ort.OrtValue.ortvalue_from_numpy(self._empty)
        self._past = dict.fromkeys(self._past_names, empty)

    def prefill(self, ids: list[int]) -> tuple[int, torch.Tensor]:
        reuse = self.reusable(ids)
        if reuse == 0:
            self.reset()
        elif reuse < len(self.ids):  # keep the first `reuse` positions of every past
            self._past = {
                name: self._ort.OrtValue.ortvalue_from_numpy(value.numpy()[:, :, :reuse].copy())
                for name, value in self._past.items()
            }
            self.ids = self.ids[:reuse]
        return reuse, self.feed(ids[reuse:])

    def feed(self, new_ids: list[int]) -> torch.Tensor:
        ids = self._np.array([new_ids], dtype=self._np.int64)
        feed = {**self._past, "input_ids": self._ort.OrtValue.ortvalue_from_numpy(ids)}
        result = self.session.run_with_ort_values(self._outputs, feed)
        self._past = dict(zip(self._past_names, result[1:], strict=True))
        self.ids.extend(new_ids)
        return torch.from_numpy(result[0].numpy()[0, -1].copy())

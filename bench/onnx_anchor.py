"""ONNX Runtime anchors for bench/generate.py: GPT-2 exported to ONNX with an explicit KV cache,
weights quantized by onnxruntime's own tools (int8: `quantize_dynamic`; int4: MatMulNBits, 4-bit
blocks of 32 with int8 compute), greedy decoding in numpy.

The export is a small torch module over the HF weights rather than transformers' model, so the
graph has plain tensors for the cache (one past/present key and value per layer) and no cache
classes for the exporter to trace through. Files are cached in model_dir / "bench-ort-int8".
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from scribe.engine.runtime.gpt2.onnx_graph import OPSET, cache_names

FP32_FILE = "model-fp32.onnx"
# QInt8 weights with per-tensor scales decoded fastest on the 2-core AVX2 machine this was written
# on (interleaved runs, median tok/s: 41.8, vs 38.7 per-channel and 36.6 for QUInt8).
WEIGHT_TYPE = "QInt8"
PER_CHANNEL = False
# The settings are in the name, so changing them quantizes again instead of reusing a stale file.
INT8_FILE = f"model-{WEIGHT_TYPE.lower()}{'-per-channel' if PER_CHANNEL else ''}.onnx"
INT4_BLOCK = 32  # llama.cpp q4_0's block (scribe's own int4 graph uses blocks of 128)
INT4_FILE = f"model-matmulnbits-int4-b{INT4_BLOCK}.onnx"
FILES = {"int8": INT8_FILE, "int4": INT4_FILE}


def export_fp32(model_dir: Path, path: Path) -> None:
    """GPT-2 exported in fp32 from the model's own file, the usual way: torch.onnx.export."""
    from safetensors.torch import load_file

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(model_dir / "model.safetensors")
    export({k.removeprefix("transformer."): v for k, v in weights.items()}, config, path)


def _tensors(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors the graph needs (no attention masks or a separate tied head)."""
    return {
        name: weights[name]
        for name in weights
        if not name.endswith((".attn.bias", ".attn.masked_bias")) and name != "lm_head.weight"
    }


def export(weights: Mapping[str, torch.Tensor], config: dict[str, Any], path: Path) -> None:
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


def build(model_dir: Path, kind: str = "int8") -> Path:
    """The quantized model, exporting and quantizing only when the cache folder lacks it."""
    out_dir = model_dir / "bench-ort-int8"
    target = out_dir / FILES[kind]
    if target.exists():
        return target
    out_dir.mkdir(exist_ok=True)
    # Each file is written under a .tmp name and renamed when complete: no half file is reused.
    fp32 = out_dir / FP32_FILE
    if not fp32.exists():
        tmp = out_dir / (FP32_FILE + ".tmp")
        export_fp32(model_dir, tmp)
        tmp.rename(fp32)
    tmp = out_dir / (FILES[kind] + ".tmp")
    if kind == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            fp32,
            tmp,
            weight_type=QuantType[WEIGHT_TYPE],
            per_channel=PER_CHANNEL,
            op_types_to_quantize=["MatMul"],
        )
    else:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        # accuracy_level 4: activations in int8, the fastest MatMulNBits kernel on x86.
        quant = MatMulNBitsQuantizer(
            str(fp32), bits=4, block_size=INT4_BLOCK, is_symmetric=True, accuracy_level=4
        )
        quant.process()
        quant.model.save_model_to_file(str(tmp), False)  # one file: int4 stays under 2 GB
    tmp.rename(target)
    return target


def session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def greedy(sess: Any, ids: list[int], new: int) -> list[int]:
    """`new` greedy tokens after `ids`: the prompt in one run, then one token per run with the
    cache. Presents stay OrtValues and feed the next step as pasts, with no numpy round trip."""
    import numpy as np
    import onnxruntime as ort

    names = [i.name for i in sess.get_inputs()]
    past_names = names[1:]
    outputs = [o.name for o in sess.get_outputs()]
    heads, _, head_dim = sess.get_inputs()[1].shape[1:]
    empty = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
    feed = {name: ort.OrtValue.ortvalue_from_numpy(empty) for name in past_names}
    step = np.array([ids], dtype=np.int64)
    tokens: list[int] = []
    while True:
        feed["input_ids"] = ort.OrtValue.ortvalue_from_numpy(step)
        result = sess.run_with_ort_values(outputs, feed)
        tokens.append(int(result[0].numpy()[0, -1].argmax()))
        if len(tokens) == new:
            return tokens
        feed = dict(zip(past_names, result[1:], strict=True))
        step = np.array([[tokens[-1]]], dtype=np.int64)


def run_onnxruntime(
    model_dir: Path,
    measure: Callable[[Callable[[list[int], int], float]], dict[str, Any]],
    kind: str = "int8",
) -> dict[str, Any]:
    start = time.perf_counter()
    path = model_dir / "bench-ort-int8" / FILES[kind]
    if not path.exists():
        # Export and quantize in a child process: they peak near 3 GB, which would otherwise be
        # this worker's peak RSS, the figure the bench reports for the engine.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            path = pool.submit(build, model_dir, kind).result()
    build_s = time.perf_counter() - start
    sess = session(path)

    def generate(ids: list[int], new: int) -> float:
        start = time.perf_counter()
        greedy(sess, ids, new)
        return time.perf_counter() - start

    result = measure(generate)
    result["build_s"] = build_s  # export + quantize on a first run; ~0 when cached
    return result

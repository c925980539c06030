"""ONNX Runtime anchors for bench/generate.py: GPT-2 exported to ONNX with an explicit KV cache,
weights quantized by onnxruntime's own tools (int8: `quantize_dynamic`; int4: MatMulNBits, 4-bit
blocks of 32 with int8 compute), greedy decoding in numpy.

The export is a small torch module over the HF weights rather than transformers' model, so the
graph has plain tensors for the cache (one past/present key and value per layer) and no cache
classes for the exporter to trace through. Files are cached in model_dir / "bench-ort-int8".
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

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
    """The same graph scribe's int4 path runs, exported in fp32 from the model's own file."""
    from safetensors.torch import load_file

    from scribe.engine.runtime.gpt2.onnx_int4 import export_fp32 as export

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(model_dir / "model.safetensors")
    export({k.removeprefix("transformer."): v for k, v in weights.items()}, config, path)


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

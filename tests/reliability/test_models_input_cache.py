"""The int8/bf16 weight cache and the int4 graph beside a model are scribe's own derived files,
not the user's model: when one is damaged (torn write, garbage, wrong parts) the next start
rebuilds it (the int4 graph with a notice) and generates exactly what an intact cache gives."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from scribe.engine.runtime import derived_weights, onnx_int4
from tests.tui.cli_run import Cli


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def garbage(file: Path) -> None:
    file.write_bytes(b"\xff" * 256)


def empty(file: Path) -> None:
    file.write_bytes(b"")


def wrong_parts(file: Path) -> None:
    """A readable safetensors with the right fingerprint but a float where int8 belongs."""
    with safe_open(str(file), framework="pt") as handle:
        metadata = handle.metadata()
    save_file({"h.0.attn.c_attn:q": torch.zeros(4, 4)}, str(file), metadata=metadata)


@pytest.mark.parametrize("damage", [truncate, garbage, empty, wrong_parts])
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_damaged_cache_is_rebuilt_and_gives_the_same_text(
    cli: Cli,
    tiny_model_dir: Path,
    tmp_path: Path,
    precision: str,
    damage: Callable[[Path], None],
) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    args = ["complete", "--model", str(model), "--precision", precision]
    args += ["--temperature", "0", "--max-tokens", "12"]
    code, first, err = cli(*args)
    cache = derived_weights.cache_file(model, precision)
    assert code == 0 and err == "" and first and cache.exists()
    assert derived_weights.load_cached(model, precision) is not None

    damage(cache)
    assert derived_weights.load_cached(model, precision) is None  # not trusted...
    code, again, err = cli(*args)
    assert (code, err) == (0, "")
    assert again == first
    assert derived_weights.load_cached(model, precision) is not None  # ...and written anew


@pytest.mark.skipif(not onnx_int4.available(), reason="onnxruntime is not installed")
@pytest.mark.parametrize("damage", [truncate, garbage, empty])
def test_a_damaged_int4_graph_is_rebuilt_and_gives_the_same_text(
    cli: Cli, tiny_model_dir: Path, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    args = ["complete", "--model", str(model), "--precision", "int4"]
    args += ["--temperature", "0", "--max-tokens", "12"]
    code, first, err = cli(*args)
    graph = onnx_int4.cache_path(model)
    assert code == 0 and err == "" and first and onnx_int4.cached(model) == graph
    damage(graph)
    code, again, err = cli(*args)
    assert code == 0 and err.startswith("scribe: warning: the int4 cache ") and err.count("\n") == 1
    assert "damaged" in err  # rebuilt with a notice, never used as it is
    assert again == first
    assert graph.stat().st_size > 1000 and onnx_int4.cached(model) == graph  # built anew


@pytest.mark.skipif(not onnx_int4.available(), reason="onnxruntime is not installed")
def test_a_damaged_int4_prefill_graph_still_answers_and_is_rebuilt_next_start(
    cli: Cli, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A prefill graph changed since its build is found when the cache is opened and both
    graphs are built again, with a notice (one damaged while scribe runs leaves long inputs to
    the int4 graph, and the next start builds both again)."""
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    args = ["complete", "--model", str(model), "--precision", "int4"]
    args += ["--temperature", "0", "--max-tokens", "12"]
    long_input = b"The quick brown fox jumps over the lazy dog. " * 10
    code, first, err = cli(*args, stdin=long_input)
    assert code == 0 and err == "" and first
    graph = onnx_int4.cache_path(model)
    garbage(onnx_int4.prefill_path(graph))
    code, again, err = cli(*args, stdin=long_input)
    assert code == 0 and again == first
    assert err.startswith("scribe: warning: the int4 cache ") and "damaged" in err
    assert onnx_int4.cached(model) == graph  # built again at once...
    code, third, err = cli(*args, stdin=long_input)
    assert (code, err) == (0, "") and third == first  # ...and used as it is from then on
    assert onnx_int4.cached(model) == graph

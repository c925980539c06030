"""int4 GPT-2 on ONNX Runtime: 4-bit weights read as 4 bits, one token at a time.

torch has no fast 4-bit matmul on x86 (its int4pack kernel is several times slower than fbgemm's
int8), so without onnxruntime int4 weights are widened to int8 at load. With it, `--precision
int4` runs two ONNX graphs that gpt2/onnx_graph.py builds once from the one int4 form of the
weights (gpt2/quantize.py, cached as `scribe-int4.safetensors` by derived_weights.py, which
torch's int4 path reads too) and caches beside the model with a fingerprint:

- `scribe-int4.onnx`: every matrix in its symmetric 4-bit blocks (MatMulNBits). It feeds each
  new token and gives the logits. Decode is memory-bound, and this reads half of int8's bytes.
- `scribe-int4-prefill.onnx`: the same weights widened to int8 matrices, exactly, and no LM
  head, for all but the last of a long input (PREFILL_MIN). A long input is compute-bound, and
  ONNX Runtime's int8 kernel does twice the arithmetic per second of its 4-bit one.

Both write into one set of KV buffers. Each graph keeps its tensors in a `.data` file beside it.
The int4 graph computes what gpt2/forward.py computes; tests/engine/test_quantize_quality.py
holds its perplexity gate.
"""

from __future__ import annotations

import importlib.util
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from scribe.engine.errors import ModelError
from scribe.engine.files.atomic import atomic_path, make_dirs
from scribe.engine.files.derived import CURRENT, DAMAGED, stamp_state, write_stamp
from scribe.engine.runtime import derived_weights
from scribe.engine.runtime.gpt2 import forward, onnx_graph
from scribe.engine.runtime.gpt2.checkpoint import Shape
from scribe.engine.runtime.gpt2.quantize import Quantized, quantize_weights
from scribe.engine.runtime.prefix_reuse import PrefixReuse

# In the cache's fingerprint: a new layout, or a new int4 format, builds again.
FORMAT = (
    f"7-gqa-prefill8-{derived_weights.FORMAT_VERSION}"
    f"-h{onnx_graph.HEAD_BLOCK}-a{onnx_graph.ACCURACY}"
)
FILE = "scribe-int4.onnx"
PREFILL_FILE = "scribe-int4-prefill.onnx"
# Inputs longer than this many tokens fill the cache through the int8 graph. Measured on 2 cores
# for one 1024x4096 matrix: 1000 rows take 26 ms in MatMulNBits and 13 ms in
# DynamicQuantizeMatMul; one row takes 0.06 vs 0.08 ms.
PREFILL_MIN = 32
# Tokens per prefill run: a run's attention scores and activations grow with it, its speed does
# not (1000 tokens at GPT-2 medium: 1.52 s and 46 MB less peak in runs of 256 than 1.63 s whole).
PREFILL_CHUNK = 256
# Building reads every weight in fp32: for a model this big it runs in a child process, so the
# process that serves keeps the peak memory of the graph it runs, not of the build.
CHILD_BUILD_MIN_PARAMS = 50_000_000
log = logging.getLogger(__name__)


def available() -> bool:
    """onnxruntime and the quantizer's own needs (onnx, onnx_ir) are installed."""
    return all(importlib.util.find_spec(name) for name in ("onnxruntime", "onnx", "onnx_ir"))


def unsupported(config: Mapping[str, Any]) -> str | None:
    """Why ONNX Runtime's kernels cannot run this model's shape at int4, or None. Its attention
    kernel (GroupQueryAttention) takes heads whose size is a multiple of 8; scribe's own
    `--from-scratch 1x136` makes heads of 68."""
    c, heads = int(config["n_embd"]), int(config["n_head"])
    if c % heads or (c // heads) % 8:
        return f"its attention heads are {c / heads:g} wide, not a multiple of 8"
    return None


def cache_path(model_dir: Path) -> Path:
    return derived_weights.cache_file(model_dir, "int4").with_name(FILE)


def data_path(graph: Path) -> Path:
    """The file beside the graph that holds its tensors."""
    return graph.with_name(graph.name + ".data")


def prefill_path(graph: Path) -> Path:
    """The int8 graph beside the int4 one that fills the KV buffers for long inputs."""
    return graph.with_name(PREFILL_FILE)


def _outputs(graph: Path) -> tuple[Path, ...]:
    """Every file of a build, the int4 graph last: a graph never names missing data."""
    prefill = prefill_path(graph)
    return (data_path(prefill), prefill, data_path(graph), graph)


def _stamp(model_dir: Path) -> str:
    return derived_weights.weights_fingerprint(model_dir, FORMAT)


def _state(model_dir: Path) -> str:
    """derived.py's CURRENT, MISSING, STALE or DAMAGED for the cache of `model_dir`."""
    path = cache_path(model_dir)
    return stamp_state(path.with_suffix(".json"), _stamp(model_dir), _outputs(path))


def cached(model_dir: Path) -> Path | None:
    """The cached graph when it was built from these weights with this layout and no file of
    it changed since."""
    return cache_path(model_dir) if _state(model_dir) == CURRENT else None


def open_backend(
    model_dir: Path, weights: Mapping[str, torch.Tensor], config: dict[str, Any], threads: int
) -> OrtBackend:
    """A session on the cached graph, verified first. A damaged cache (a file changed, cut short
    or gone since its build, or one ONNX Runtime cannot load) is built again with a notice; a
    stale one (other weights) quietly. Where no cache can be written the graph is built for this
    run only, as the other precisions run uncached."""
    path = cache_path(model_dir)
    state = _state(model_dir)
    if state == CURRENT:
        try:
            return OrtBackend(path, threads)
        except Exception:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
            state = DAMAGED
    if state == DAMAGED:
        log.warning("the int4 cache %s is damaged; building it again", path)
    return _build_and_open(model_dir, weights, config, threads, path)


def _build_and_open(
    model_dir: Path,
    weights: Mapping[str, torch.Tensor],
    config: dict[str, Any],
    threads: int,
    target: Path,
) -> OrtBackend:
    """Build into a private scratch folder beside the cache (or under the system's temp dir
    when the cache's folder cannot be made), then install it, stamped with the fingerprint read
    BEFORE the build, unless the weights changed meanwhile: a graph of the old weights is then
    served to this run only, never stamped current."""
    built_from = _stamp(model_dir)
    scratch = _scratch(target.parent)
    graph = Path(scratch.name) / FILE
    c, layers = config["n_embd"], config["n_layer"]
    params = 12 * layers * c * c + (config["vocab_size"] + config["n_positions"]) * c
    if params >= CHILD_BUILD_MIN_PARAMS:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            pool.submit(_build_from_folder, str(model_dir), str(graph)).result()
    else:
        build(weights, config, graph, int4_weights(model_dir, weights, config))
    if _install(model_dir, graph, target, built_from):
        scratch.cleanup()
        return OrtBackend(target, threads)
    backend = OrtBackend(graph, threads)
    backend.scratch = scratch  # the files live as long as the backend that maps them
    return backend


def _scratch(folder: Path) -> tempfile.TemporaryDirectory[str]:
    """A private (0700) folder for a build, in `folder` so that installing is a rename."""
    try:
        make_dirs(folder)
        return tempfile.TemporaryDirectory(prefix=".scribe-int4-", dir=folder)
    except OSError:
        pass
    try:
        return tempfile.TemporaryDirectory(prefix="scribe-int4-")
    except OSError as err:
        raise ModelError(
            f"cannot build the int4 graph: neither {folder} nor the temp dir is writable "
            f"({err.strerror or err}); free some space, or pass --precision int8"
        ) from None


def _install(model_dir: Path, graph: Path, target: Path, built_from: str) -> bool:
    """Link the build's files into the cache and stamp them; False (the build stays in its
    scratch folder, for this run) when the weights changed during the build or the cache
    cannot be written."""
    if _stamp(model_dir) != built_from:
        log.warning(
            "%s: the weights changed while the int4 graph was built; it runs this time but "
            "is not cached",
            model_dir,
        )
        return False
    stamp = target.with_suffix(".json")
    try:
        stamp.unlink(missing_ok=True)  # the old outputs go: no stamp may name them meanwhile
        for source in _outputs(graph):
            with atomic_path(target.with_name(source.name)) as part:
                _link_or_copy(source, part)
        write_stamp(stamp, built_from, _outputs(target))
    except OSError:
        return False
    return True


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link keeps the build in its scratch folder until installing has succeeded."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def int4_weights(
    model_dir: Path, weights: Mapping[str, torch.Tensor], config: Mapping[str, Any]
) -> dict[str, Quantized]:
    """The one int4 form of every matrix, from the cache torch's int4 path shares (quantized
    and cached now when it has none)."""
    linears = forward.linears(Shape.from_config(config))
    return derived_weights.quantized_weights(model_dir, "int4", weights, linears)


def _build_from_folder(model_dir: str, target: str) -> None:
    """In the child: read the model's fp32 tensors the way generation does, then build."""
    from scribe.engine.runtime.models import load

    loaded = load(model_dir, precision="fp32")
    weights = loaded.weights if loaded.weights is not None else forward.model_weights(loaded.model)
    path = Path(model_dir)
    build(weights, loaded.config, Path(target), int4_weights(path, weights, loaded.config))


def build(
    weights: Mapping[str, torch.Tensor],
    config: dict[str, Any],
    target: Path,
    stored: Mapping[str, Quantized] | None = None,
) -> None:
    """Build both graphs (gpt2/onnx_graph.py) from `stored`, the weights' one int4 form
    (quantized now when None): the prefill one, then the int4 one at `target`."""
    if stored is None:
        linears = forward.linears(Shape.from_config(config))
        stored = quantize_weights("int4", weights, linears)
    _save(onnx_graph.build(weights, config, stored, prefill=True), prefill_path(target))
    _save(onnx_graph.build(weights, config, stored), target)


def _save(model: Any, target: Path) -> None:
    """Write `target` and its data file whole, so a half-written graph is never loaded."""
    import onnx

    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        # The tensors in a file of their own, which ONNX Runtime maps instead of copying out of
        # the parsed graph: a lower peak and a faster load than one file. onnx writes the data
        # file beside the graph under the name the graph records, hence the scratch folder.
        graph = Path(scratch) / target.name
        onnx.save_model(
            model,
            str(graph),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_path(target).name,
            size_threshold=1024,
        )
        with atomic_path(data_path(target)) as part:
            (Path(scratch) / data_path(target).name).replace(part)
        with atomic_path(target) as part:  # last: a graph never names missing data
            graph.replace(part)


class OrtBackend:
    """Prefix reuse in place over KV buffers that both graphs share: one per layer for keys
    and one for values, each as long as the model's window, bound once as both past input and
    present output of each graph."""

    precision = "int4"
    threads = None  # ONNX Runtime sizes its own thread pool

    def __init__(self, path: Path, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        self.cached = PrefixReuse()
        self._np = np  # bound once: `feed` runs every token
        self._path, self._threads = path, threads
        self.scratch: Any = None  # an uncached build's folder, kept while this backend lives
        self.session = _session(path, threads, arena=True)
        # Opened at the first long input: a short one (`scribe complete` on a line, an
        # editor's first request) starts 0.4 s sooner at GPT-2 medium.
        self._prefill: tuple[Any, Any] | bool | None = None  # False: it would not open
        window = int(self.session.get_modelmeta().custom_metadata_map["window"])
        inputs = self.session.get_inputs()
        _, heads, _, head_dim = inputs[-1].shape
        vocab = self.session.get_outputs()[0].shape[-1]
        # Allocated by ONNX Runtime and never cleared: the kernel reads only positions it wrote.
        self._buffers = {
            past.name: ort.OrtValue.ortvalue_from_shape_and_type(
                [1, heads, window, head_dim], np.float32
            )
            for past in inputs
            if past.name.startswith("past_")
        }
        self._logits = ort.OrtValue.ortvalue_from_shape_and_type([1, 1, vocab], np.float32)
        self._decode = (self.session, self._bind(self.session))
        self._decode[1].bind_ortvalue_output("logits", self._logits)

    def _bind(self, session: Any) -> Any:
        """A binding of `session` whose pasts and presents are the shared buffers."""
        binding = session.io_binding()
        for past, buffer in self._buffers.items():
            binding.bind_ortvalue_input(past, buffer)
            binding.bind_ortvalue_output(past.replace("past_", "present_"), buffer)
        return binding

    def reset(self) -> None:
        self.cached.clear()

    def prefill(self, ids: list[int]) -> tuple[int, Any]:
        return self.cached.prefill(ids, self.feed)

    def feed(self, new_ids: list[int]) -> Any:
        """All but the last of many new tokens go through the int8 graph (see PREFILL_MIN),
        the last through the int4 one, which gives the logits."""
        if len(new_ids) > PREFILL_MIN and self._open_prefill():
            head, new_ids = new_ids[:-1], new_ids[-1:]
            for start in range(0, len(head), PREFILL_CHUNK):
                self._run(self._prefill, head[start : start + PREFILL_CHUNK])
        self._run(self._decode, new_ids)
        return self._logits.numpy()[0, -1].copy()  # numpy float32, as every backend gives

    def _open_prefill(self) -> bool:
        """Whether the prefill graph is open, opening it on first use. One ONNX Runtime cannot
        load (damaged on disk) leaves long inputs to the int4 graph, slower but the same
        model, and drops the cache's stamp so that the next start builds both again."""
        if self._prefill is None:
            try:
                session = _session(prefill_path(self._path), self._threads, arena=False)
            except Exception:  # noqa: BLE001 - onnxruntime raises its own untyped errors
                log.warning(
                    "the int4 cache %s is damaged; long inputs run on the int4 graph, and the "
                    "next start builds it again",
                    prefill_path(self._path),
                )
                self._path.with_suffix(".json").unlink(missing_ok=True)
                self._prefill = False
            else:
                self._prefill = (session, self._bind(session))
        return bool(self._prefill)

    def _run(self, graph: tuple[Any, Any], new_ids: list[int]) -> None:
        np, start = self._np, len(self.cached.ids)
        total = start + len(new_ids)
        inputs = {
            "input_ids": np.array([new_ids], dtype=np.int64),
            "position_ids": np.arange(start, total, dtype=np.int64)[None],
            "seqlens_k": np.array([total - 1], dtype=np.int32),
            "total_length": np.array(total, dtype=np.int32),
        }
        session, binding = graph
        for name, value in inputs.items():
            binding.bind_cpu_input(name, value)
        session.run_with_iobinding(binding)
        self.cached.ids.extend(new_ids)


def _session(path: Path, threads: int, arena: bool) -> Any:
    """`arena`: keep freed buffers for the next run, which helps one-token steps; a long
    input's buffers go back to the system (55 MB less peak at GPT-2 medium, at no cost in
    speed)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings would reach the editor's or the user's stderr
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

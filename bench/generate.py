"""Generation speed: scribe's engine in every precision beside transformers' generate() fp32, in
one run, on GPT-2-shaped random weights (speed does not depend on trained values).

    .venv/bin/python bench/generate.py [--shape 124m|355m|774m|1.5b] [--skip-anchors]

Prints, per engine: time to first token for 256- and 1000-token prompts, decode tokens/s over
128 new tokens, the editor case (a 1000-token prompt whose last 10 tokens changed: time to first
token with prefix reuse vs without), peak RSS, ratios to generate() fp32, and decode as a share of
the memory-bandwidth bound measured in the same run. Anchors run when installed: llama.cpp
(llama-cpp-python; the GGUF that `scribe export` writes, quantized by llama.cpp), CTranslate2 and
ONNX Runtime (bench/onnx_anchor.py).
Then: decode with a process spinning on one core, and `scribe complete` start-up to first token
(first start quantizes, second reads the cache). Each engine runs in its own process (clean peak
RSS); every figure is the median of REPEATS runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
VOCAB = 50000  # prompt ids are drawn below this (the worker lowers it to a smaller model's)
NEW_TOKENS = 128
PRECISIONS = ("fp32", "bf16", "int8", "int4")
# Bytes read per weight, per precision, for the bandwidth bound (int4 counts its 4-bit storage).
BYTES_PER_WEIGHT = {"fp32": 4, "bf16": 2, "int8": 1, "int4": 0.5, "q8_0": 34 / 32, "q4_0": 18 / 32}


def median(values: list[float]) -> float:
    return statistics.median(values)


def prompt(n: int, seed: int = 0) -> list[int]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return [int(t) for t in torch.randint(0, VOCAB, (n,), generator=gen)]


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ru_maxrss survives exec, so a worker would
    report at least the bench's own RSS when it was started; VmHWM belongs to the new image."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matrix_params(model_dir: Path) -> int:
    """Weights read once per decoded token: every block matrix plus the (tied) LM head."""
    config = json.loads((model_dir / "config.json").read_text())
    c, layers, vocab = config["n_embd"], config["n_layer"], config["vocab_size"]
    return layers * (c * 3 * c + c * c + 2 * c * 4 * c) + vocab * c


def bandwidth_gbs() -> float:
    """Read bandwidth: summing a 512 MB tensor, best of 5 with 1 thread and with all cores (the
    bound is what the hardware can do; other processes only lower single runs)."""
    import torch

    data = torch.ones(128 * 1024 * 1024)
    before = torch.get_num_threads()
    times = []
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        for _ in range(5):
            start = time.perf_counter()
            float(data.sum())
            times.append(time.perf_counter() - start)
    torch.set_num_threads(before)
    return data.numel() * 4 / min(times) / 1e9


def measure(generate: Callable[[list[int], int], float]) -> dict[str, Any]:
    """The anchors' common protocol: `generate(ids, new)` returns seconds for `new` tokens.
    Time to first token at 256 and 1000 tokens, and decode speed as the difference between
    128 new tokens and one, so prefill cancels out."""
    generate(prompt(8), 2)  # warm-up
    out: dict[str, Any] = {}
    for n in (256, 1000):
        out[f"ttft_{n}"] = median([generate(prompt(n, i), 1) for i in range(REPEATS)])
    short = prompt(32)
    one = median([generate(short, 1) for _ in range(REPEATS)])
    full = median([generate(short, NEW_TOKENS) for _ in range(REPEATS)])
    out["decode_tps"] = (NEW_TOKENS - 1) / (full - one)
    return out


# -- engines, each run in its own worker process ----------------------------------------------
def run_transformers(model_dir: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def generate(ids: list[int], new: int) -> float:
        x = torch.tensor([ids])
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                x,
                attention_mask=torch.ones_like(x),
                do_sample=False,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=0,
            )
        return time.perf_counter() - start

    return measure(generate)


def run_scribe(model_dir: Path, precision: str) -> dict[str, Any]:
    """`precision`, or fp32-numpy / fp32-torch: fp32 on that backend, whatever the model's size
    (backend.py's NUMPY_MAX_PARAMS moved), to compare the two."""
    from scribe.engine.runtime import backend
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load
    from scribe.engine.runtime.options import GenerationOptions

    precision, _, forced = precision.partition("-")
    if forced:
        backend.NUMPY_MAX_PARAMS = 10**12 if forced == "numpy" else -1
    gen = Generator(load(str(model_dir), precision=precision))
    gen.warm()
    first = GenerationOptions(max_new_tokens=1, temperature=0)

    def ttft(ids: list[int], fresh: bool = True) -> tuple[float, Any]:
        if fresh:
            gen.forget_cache()
        start = time.perf_counter()
        stream = gen.stream(ids, first)
        stream.text()
        return time.perf_counter() - start, stream.stats

    out: dict[str, Any] = {"precision": gen.precision, "backend": backend.choose(gen.loaded)}
    for n in (256, 1000):
        out[f"ttft_{n}"] = median([ttft(prompt(n, i))[0] for i in range(REPEATS)])
    # The editor case: the same 1000-token prompt with its last 10 tokens changed.
    reuse, cold = [], []
    for i in range(REPEATS):
        base = prompt(1000, 10 + i)
        edited = base[:-10] + prompt(10, 100 + i)
        ttft(base)
        seconds, stats = ttft(edited, fresh=False)
        assert stats.reused_tokens == 990, stats
        reuse.append(seconds)
        cold.append(ttft(edited)[0])
    out["edit_reuse"], out["edit_cold"] = median(reuse), median(cold)
    out.update(decode_scribe(gen))
    return out


def decode_scribe(gen: Any) -> dict[str, Any]:
    from scribe.engine.runtime.options import GenerationOptions

    options = GenerationOptions(max_new_tokens=NEW_TOKENS, temperature=0)
    rates = []
    for i in range(REPEATS):
        gen.forget_cache()
        stream = gen.stream(prompt(32, 50 + i), options)
        stream.text()
        rates.append((stream.stats.new_tokens - 1) / stream.stats.decode_s)
    return {"decode_tps": median(rates), "threads": dict(gen.decode_threads.average)}


def run_spinning(model_dir: Path, precision: str) -> dict[str, Any]:
    """Decode quiet, then with a process spinning on one core: adaptive threads vs fixed 2."""
    from scribe.engine.runtime import threads
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load

    gen = Generator(load(str(model_dir), precision=precision))
    gen.warm()
    cores = threads.available_cores()
    out = {"quiet": decode_scribe(gen)["decode_tps"]}
    one = threads.DecodeThreads(cores, gen.decode_threads.pool)
    one.candidates = [1]  # the ceiling with one free core: one thread on a quiet machine
    gen.decode_threads, adaptive = one, gen.decode_threads
    out["quiet_one_thread"] = decode_scribe(gen)["decode_tps"]
    gen.decode_threads = adaptive
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        out["spinning"] = decode_scribe(gen)["decode_tps"]
        fixed = threads.DecodeThreads(cores, gen.decode_threads.pool)
        fixed.candidates = [cores]  # what a fixed all-cores decode would do
        gen.decode_threads = fixed
        out["spinning_fixed"] = decode_scribe(gen)["decode_tps"]
    finally:
        spinner.kill()
        spinner.wait()
    return out


def llama_gguf(model_dir: Path, kind: str) -> Path:
    import llama_cpp

    from scribe.engine.export.gguf import export_gguf

    f16 = model_dir / "bench-f16.gguf"
    if not f16.exists():
        export_gguf(str(model_dir), "f16", out=f16)  # `scribe export`'s own file
    out = model_dir / f"bench-{kind}.gguf"
    if not out.exists():  # quantized by llama.cpp itself, as its users do
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": 2}[kind]
        params.nthread = os.cpu_count() or 1
        code = llama_cpp.llama_model_quantize(str(f16).encode(), str(out).encode(), params)
        if code != 0:
            raise RuntimeError(f"llama_model_quantize failed ({code})")
    return out


def run_llama(model_dir: Path, kind: str) -> dict[str, Any]:
    import llama_cpp

    path = llama_gguf(model_dir, kind)
    threads = os.cpu_count() or 1
    llm = llama_cpp.Llama(
        str(path),
        n_ctx=1024,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=1024,
        verbose=False,
    )

    def generate(ids: list[int], new: int) -> float:
        llm.reset()
        start = time.perf_counter()
        count = 0
        for _ in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            count += 1
            if count >= new:
                break
        return time.perf_counter() - start

    return measure(generate)


def run_ctranslate2(model_dir: Path) -> dict[str, Any]:
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    out_dir = model_dir / "bench-ct2-int8"
    if not out_dir.exists():
        TransformersConverter(str(model_dir)).convert(str(out_dir), quantization="int8")
    threads = os.cpu_count() or 1
    gen = ctranslate2.Generator(str(out_dir), device="cpu", intra_threads=threads)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)

    def generate(ids: list[int], new: int) -> float:
        tokens = tok.convert_ids_to_tokens(ids)
        start = time.perf_counter()
        gen.generate_batch(
            [tokens],
            max_length=new,
            min_length=new,
            sampling_topk=1,
            include_prompt_in_result=False,
        )
        return time.perf_counter() - start

    return measure(generate)


def worker(name: str, model_dir: Path) -> dict[str, Any]:
    global VOCAB
    VOCAB = min(VOCAB, json.loads((model_dir / "config.json").read_text())["vocab_size"])
    kind, _, arg = name.partition(":")
    if kind == "transformers":
        result = run_transformers(model_dir)
    elif kind == "scribe":
        result = run_scribe(model_dir, arg)
    elif kind == "spinning":
        result = run_spinning(model_dir, arg)
    elif kind == "llama.cpp":
        result = run_llama(model_dir, arg)
    elif kind == "ctranslate2":
        result = run_ctranslate2(model_dir)
    elif kind == "onnxruntime":
        from bench import onnx_anchor  # ROOT is on sys.path; bench/ is a namespace package

        result = onnx_anchor.run_onnxruntime(model_dir, measure, arg or "int8")
    else:
        raise SystemExit(f"unknown worker {name}")
    result["rss_mb"] = peak_rss_mb()
    return result


def spawn(name: str, model_dir: Path) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--worker", name, "--model-dir", str(model_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"  {name}: skipped ({tail[0][:160]})", flush=True)
        return None
    return json.loads(lines[-1])


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def startup(model_dir: Path, precision: str) -> list[float]:
    """`scribe complete` wall time to one token: first start (quantizes), then a cached start."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "scribe.tui.cli",
                "complete",
                "--model",
                str(model_dir),
                "--precision",
                precision,
                "--max-tokens",
                "1",
                "--temperature",
                "0",
            ],
            input=b"Hello there",
            capture_output=True,
            check=True,
        )
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker")
    parser.add_argument("--model-dir", type=Path, help="a model to use instead of building one")
    parser.add_argument("--shape", default="124m", choices=["124m", "355m", "774m", "1.5b"])
    parser.add_argument("--skip-anchors", action="store_true")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model_dir)))
        return
    from tests import factory

    model_dir = args.model_dir or Path(tempfile.gettempdir()) / f"scribe-bench-gpt2-{args.shape}"
    if not (model_dir / "config.json").exists():
        factory.gpt2_shape(model_dir, args.shape)
    for stale in {*model_dir.glob("scribe-*.safetensors"), *model_dir.glob("scribe-int4*")}:
        stale.unlink(missing_ok=True)  # start-up below measures quantizing from scratch
    load = os.getloadavg()
    print(
        f"GPT-2 {args.shape}-shaped random weights in {model_dir}; {os.cpu_count()} cores; "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    params = matrix_params(model_dir)
    gbs = bandwidth_gbs()
    print(
        f"memory read bandwidth {gbs:.1f} GB/s; {params / 1e6:.1f}M weights read per token",
        flush=True,
    )
    startup_times = {p: startup(model_dir, p) for p in ("int8", "int4")}

    engines = [("transformers generate() fp32", "transformers", "fp32")]
    engines += [(f"scribe {p}", f"scribe:{p}", p) for p in args.precisions.split(",")]
    if not args.skip_anchors:
        if installed("llama_cpp") and installed("gguf"):
            engines += [(f"llama.cpp {k}", f"llama.cpp:{k}", k) for k in ("q8_0", "q4_0")]
        else:
            print("  llama.cpp: not installed (pip install llama-cpp-python gguf), skipped")
        if installed("ctranslate2"):
            engines.append(("CTranslate2 int8", "ctranslate2", "int8"))
        else:
            print("  CTranslate2: not installed, skipped")
        if installed("onnxruntime") and installed("onnx"):
            engines += [(f"ONNX Runtime {k}", f"onnxruntime:{k}", k) for k in ("int8", "int4")]
        else:
            print("  ONNX Runtime: not installed (pip install onnxruntime onnx), skipped")
    results: dict[str, dict[str, Any]] = {}
    for label, name, precision in engines:
        print(f"running {label} ...", flush=True)
        result = spawn(name, model_dir)
        if result is not None:
            result["bound"] = gbs * 1e9 / (params * BYTES_PER_WEIGHT[precision])
            results[label] = result

    base = results.get("transformers generate() fp32", {})
    print()
    head = (
        f"| {'engine':<28} | decode tok/s | x base | % of bound | TTFT 256 | TTFT 1000 | "
        "edit TTFT reuse / cold | peak RSS |"
    )
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for label, r in results.items():
        ratio = r["decode_tps"] / base["decode_tps"] if base else float("nan")
        edit = (
            f"{r['edit_reuse'] * 1e3:6.1f} ms / {r['edit_cold'] * 1e3:6.0f} ms"
            if "edit_reuse" in r
            else "-"
        )
        print(
            f"| {label:<28} | {r['decode_tps']:12.1f} | {ratio:5.2f}x | "
            f"{100 * r['decode_tps'] / r['bound']:9.0f}% | {r['ttft_256']:7.3f}s | "
            f"{r['ttft_1000']:8.3f}s | {edit:>22} | {r['rss_mb']:5.0f} MB |"
        )
    print(
        f"\n(bound = {gbs:.1f} GB/s / bytes of weights per token; TTFT = time to first token; "
        "edit = 1000-token prompt, last 10 tokens changed)"
    )
    scribe_runs = {k: v for k, v in results.items() if k.startswith("scribe")}
    if scribe_runs and base:
        best_label = max(scribe_runs, key=lambda k: scribe_runs[k]["decode_tps"])
        best = scribe_runs[best_label]
        print(
            f"\nbest scribe: {best_label}: decode {best['decode_tps'] / base['decode_tps']:.2f}x "
            f"generate() fp32 (required >= 1.3x); prefix reuse TTFT "
            f"{best['edit_reuse'] / best['edit_cold']:.3f} of cold (required <= 0.1), "
            f"{best['edit_reuse'] * 1e3:.1f} ms (issue 7 target <= 50 ms)"
        )
        for anchor in (
            "llama.cpp q8_0",
            "llama.cpp q4_0",
            "CTranslate2 int8",
            "ONNX Runtime int8",
            "ONNX Runtime int4",
        ):
            if anchor in results:
                a = results[anchor]
                print(
                    f"  vs {anchor}: decode {best['decode_tps'] / a['decode_tps']:.2f}x, "
                    f"TTFT 1000 {best['ttft_1000']:.3f}s vs {a['ttft_1000']:.3f}s"
                )
        for goal in ("llama.cpp q4_0", "ONNX Runtime int8"):
            if goal in results:
                need = results[goal]["decode_tps"]
                verdict = "met" if best["decode_tps"] > need else "NOT met"
                print(f"decode > {goal} ({need:.1f} tok/s): {verdict}")
        others = [r["ttft_1000"] for k, r in results.items() if not k.startswith("scribe")]
        verdict = "met" if best["ttft_1000"] <= min(others) else "NOT met"
        print(
            f"{best_label} 1000-token prefill {best['ttft_1000']:.3f}s, fastest other engine "
            f"{min(others):.3f}s: {verdict}"
        )
        if "scribe int4" in results and "scribe int8" in results:
            int4, int8 = results["scribe int4"]["rss_mb"], results["scribe int8"]["rss_mb"]
            verdict = "met" if int4 <= int8 else "NOT met"
            print(f"int4 peak RSS {int4:.0f} MB <= int8 {int8:.0f} MB: {verdict}")
        precision = best["precision"]
        spin = spawn(f"spinning:{precision}", model_dir)
        if spin:
            print(
                f"\nspinning-core test ({precision}): quiet {spin['quiet']:.1f} tok/s; one core "
                f"busy: adaptive threads {spin['spinning']:.1f} tok/s "
                f"({100 * spin['spinning'] / spin['quiet']:.0f}% of quiet, target >= 80%), "
                f"fixed {os.cpu_count()} threads {spin['spinning_fixed']:.1f} tok/s; one thread "
                f"on the quiet machine {spin['quiet_one_thread']:.1f} tok/s (adaptive reaches "
                f"{100 * spin['spinning'] / spin['quiet_one_thread']:.0f}% of that ceiling)"
            )
    for precision, (first, second) in startup_times.items():
        print(
            f"`scribe complete --precision {precision} --max-tokens 1` start-up to first token: "
            f"{first:.2f}s first start (quantizes), {second:.2f}s second start (cached)"
        )
    load = os.getloadavg()
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()

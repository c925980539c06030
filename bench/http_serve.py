"""`scribe serve --http` against the engine it serves, in one run.

1. HTTP overhead: the same greedy request (a ~200-token prompt, 64 new tokens) through the
   engine in-process, as `scribe complete` runs it (`models.load` + `Generator.stream`), and
   through /v1/completions streaming on a real server process: time to first token, tokens/s.
2. The editor scenario, llama.vim's way: a ~1000-token document, a one-word edit near its end,
   then an /infill request for 8 tokens; with prefix reuse (`cache_prompt: true`, the default)
   and without (`cache_prompt: false`: the whole prompt is computed again).
3. Eight streaming clients at once (different prompts, 32 tokens each): aggregate tokens/s,
   p50/p95 of the request latency, the first token's p50, and the server's peak RSS.
4. Where llama-cpp-python with its server extra is installed (`pip install
   'llama-cpp-python[server]'`), the same requests against its OpenAI-compatible server on the
   GGUF that `scribe export` writes (it has no /infill: the editor row is skipped there).

Weights: GPT-2 124M's shape with random values (tests/factory.gpt2_124m); speed does not depend
on trained values. `--quick` uses a tiny model and fewer runs, to check the script works.

    .venv/bin/python bench/http_serve.py [--quick] [--runs 10] [--precision auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402  (after the path: the bench runs from a checkout)

STORY = (
    "The fishing boats came back late that evening, and the harbour filled with voices. "
    "Anna walked along the quay with her brother, counting the lanterns that swung above "
    "the water. Nobody had seen the old lighthouse keeper since the storm; some said he had "
    "gone inland to his sister, others that he never left the tower at all. "
)
WORDS = "harbour evening lantern quiet garden window letter river morning silver".split()
WAIT_S = 600


def cpu_kind() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def document(tokens: int, encode: Any) -> str:
    doc = ""
    while len(encode(doc)) < tokens:
        doc += STORY
    words = doc.split(" ")
    while len(encode(" ".join(words))) > tokens:
        words.pop()
    return " ".join(words)


def reset_peak_rss(pid: int) -> None:
    """Start the peak over (Linux: 5 > clear_refs), so it covers what follows, not the load."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A server process (scribe's, or llama-cpp-python's) and a client for it."""

    def __init__(self, command: list[str], env: dict[str, str], url: str | None = None) -> None:
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if url is None:  # scribe says where it listens on its first line
            line = self.proc.stderr.readline()
            match = re.search(r"on (http://\S+) ", line)
            if not match:
                raise RuntimeError(f"the server did not start: {line}{self.proc.stderr.read()}")
            url = match.group(1)
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=WAIT_S)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                if self.client.get("/v1/models").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the server did not answer")
            time.sleep(0.2)

    def stream(self, body: dict[str, Any], model: str) -> dict[str, float]:
        """One streaming /v1/completions: first token, total time, tokens/s after the first."""
        body = {**body, "model": model, "stream": True, "stream_options": {"include_usage": True}}
        sent = time.perf_counter()
        first = None
        tokens = 0
        with self.client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("choices") and chunk["choices"][0].get("text") and first is None:
                    first = time.perf_counter() - sent
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
        total = time.perf_counter() - sent
        first = total if first is None else first
        rate = (tokens - 1) / (total - first) if tokens > 1 and total > first else 0.0
        return {"first_s": first, "total_s": total, "tokens": tokens, "tok_s": rate}

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def in_process(model: str, precision: str) -> Any:
    """`scribe complete`'s engine: load + Generator (this also writes the quantized weights'
    cache, so the server then starts as a second start would)."""
    from scribe.engine.runtime.generation import Generator
    from scribe.engine.runtime.models import load

    generator = Generator(load(model, precision=precision))
    generator.warm()
    return generator


def overhead(
    server: Server, generator: Any, prompt: str, new: int, runs: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The same greedy request in-process (`scribe complete`'s path without its stdout:
    Generator.stream) and through /v1/completions streaming, taking turns run by run so that a
    change in the machine's load touches both alike. Each run's prompt is new to both caches."""
    from scribe.engine.runtime.options import GenerationOptions

    local: list[dict[str, float]] = []
    remote: list[dict[str, float]] = []
    for run in range(runs + 1):
        text = f"{WORDS[run % len(WORDS)]} {run}. {prompt}"
        stream = generator.stream(text, GenerationOptions(max_new_tokens=new, temperature=0))
        for _ in stream:
            pass
        stats = stream.stats
        rate = (stats.new_tokens - 1) / stats.decode_s if stats.decode_s else 0.0
        answer = server.stream({"prompt": text, "max_tokens": new, "temperature": 0}, "")
        if run:  # the first run warms both
            local.append({"first_s": stats.first_token_s, "tok_s": rate})
            remote.append(answer)

    def median(results: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(r[k] for r in results) for k in ("first_s", "tok_s")}

    return median(local), median(remote)


def over_http(server: Server, model: str, prompt: str, new: int, runs: int) -> dict[str, float]:
    results = []
    for run in range(runs + 1):
        body = {
            "prompt": f"{WORDS[run % len(WORDS)]} {run}. {prompt}",
            "max_tokens": new,
            "temperature": 0,
        }
        result = server.stream(body, model)
        if run:
            results.append(result)
    return {k: statistics.median(r[k] for r in results) for k in ("first_s", "tok_s")}


def editor(server: Server, doc: str, runs: int, reuse: bool) -> dict[str, float]:
    """llama.vim's /infill after a one-word edit near the end of the document."""
    times, fed = [], []
    suffix = "\n\nThe next morning the sea was calm again.\n"
    for run in range(runs + 1):
        edited = doc[: doc.rindex(" ") + 1] + WORDS[run % len(WORDS)]
        prefix, middle = edited.rsplit("\n", 1) if "\n" in edited else ("", edited)
        body = {
            "input_prefix": prefix + ("\n" if prefix else ""),
            "input_suffix": suffix,
            "input_extra": [],
            "prompt": middle,
            "n_predict": 8,
            "cache_prompt": reuse,
            "temperature": 0,
            "samplers": ["top_k", "top_p", "infill"],
            "stream": False,
            "response_fields": ["content", "timings/prompt_n", "tokens_cached"],
        }
        sent = time.perf_counter()
        answer = server.client.post("/infill", json=body)
        answer.raise_for_status()
        if run:
            times.append(time.perf_counter() - sent)
            fed.append(answer.json()["timings/prompt_n"])
    return {"median_s": statistics.median(times), "fed": statistics.median(fed)}


def concurrent(server: Server, model: str, clients: int, new: int) -> dict[str, float]:
    results: list[dict[str, float]] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        body = {"prompt": f"Chapter {index}. {STORY}", "max_tokens": new, "temperature": 0}
        result = server.stream(body, model)
        with lock:
            results.append(result)

    reset_peak_rss(server.proc.pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    wall = time.perf_counter() - started
    totals = sorted(r["total_s"] for r in results)
    cuts = statistics.quantiles(totals, n=20, method="inclusive")
    return {
        "tok_s": sum(r["tokens"] for r in results) / wall,
        "p50_s": statistics.median(totals),
        "p95_s": cuts[18],
        "first_p50_s": statistics.median(r["first_s"] for r in results),
        "rss_mb": peak_rss_mb(server.proc.pid),
    }


def llama_cpp_server(model_dir: Path, env: dict[str, str]) -> Server | None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        return None
    from scribe.engine.export.gguf import export_gguf

    gguf = model_dir / "bench-q8_0.gguf"
    if not gguf.exists():
        export_gguf(str(model_dir), "q8_0", out=gguf)  # `scribe export`'s own file
    port = 18400 + os.getpid() % 1000
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "1024",
    ]
    return Server(command, env, url=f"http://127.0.0.1:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny model, few runs")
    parser.add_argument("--runs", type=int, default=10, help="measured requests per row")
    parser.add_argument("--precision", default="auto", help="the server's --precision")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    from tests import factory

    encode = factory.gpt2_tokenizer().encode
    with tempfile.TemporaryDirectory(prefix="scribe-bench-http-") as tmp:
        if args.quick:
            model_dir = factory.save_model(
                Path(tmp) / "quick", factory.gpt2_tokenizer(), n_layer=2, n_head=2, n_embd=64
            )
        else:
            model_dir = factory.gpt2_124m(Path(tmp) / "gpt2-124m")
        model = str(model_dir)
        env = dict(os.environ, SCRIBE_HOME=str(Path(tmp) / "home"), HF_HUB_OFFLINE="1")
        prompt = document(200, encode)
        doc = document(1000, encode)
        print(f"# scribe serve --http, {cpu_kind()}; model {model_dir.name}, {args.precision}")
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        command = [
            sys.executable,
            "-m",
            "scribe.tui.cli",
            "serve",
            "--http",
            "--model",
            model,
            "--port",
            "0",
            "--precision",
            args.precision,
        ]
        rows: list[tuple[str, str]] = []
        generator = in_process(model, args.precision)
        server = Server(command, env)
        try:
            local, http = overhead(server, generator, prompt, 64, runs)
            del generator
            for name, result in (
                ("scribe complete (in-process)", local),
                ("/v1/completions stream", http),
            ):
                figures = f"first token {result['first_s'] * 1000:.0f} ms, "
                rows.append((name, figures + f"{result['tok_s']:.1f} tok/s"))
            for reuse in (True, False):
                result = editor(server, doc, runs, reuse)
                rows.append(
                    (
                        f"/infill, 1000-token doc, {'reuse' if reuse else 'no reuse'}",
                        f"median {result['median_s'] * 1000:.0f} ms, "
                        f"{result['fed']:.0f} prompt tokens computed",
                    )
                )
            crowd = concurrent(server, "", args.clients, 32)
            rows.append(
                (
                    f"{args.clients} streaming clients",
                    f"{crowd['tok_s']:.1f} tok/s in all, latency p50 "
                    f"{crowd['p50_s']:.2f} s p95 {crowd['p95_s']:.2f} s, first token p50 "
                    f"{crowd['first_p50_s']:.2f} s, peak RSS {crowd['rss_mb']:.0f} MB",
                )
            )
        finally:
            server.close()
        other = llama_cpp_server(model_dir, env)
        if other is None:
            rows.append(
                (
                    "llama-cpp-python server",
                    "not installed (pip install 'llama-cpp-python[server]'), skipped",
                )
            )
        else:
            try:
                name = other.client.get("/v1/models").json()["data"][0]["id"]
                http = over_http(other, name, prompt, 64, runs)
                rows.append(
                    (
                        "llama.cpp /v1/completions stream",
                        f"first token {http['first_s'] * 1000:.0f} ms, {http['tok_s']:.1f} tok/s",
                    )
                )
                crowd = concurrent(other, name, args.clients, 32)
                rows.append(
                    (
                        f"llama.cpp, {args.clients} streaming clients",
                        f"{crowd['tok_s']:.1f} tok/s in all, latency p50 "
                        f"{crowd['p50_s']:.2f} s p95 {crowd['p95_s']:.2f} s, "
                        f"peak RSS {crowd['rss_mb']:.0f} MB",
                    )
                )
            finally:
                other.close()
        width = max(len(name) for name, _ in rows)
        for name, figures in rows:
            print(f"{name:<{width}}  {figures}")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Editor completion latency: request -> response through the real `scribe lsp`, over stdio.

Scenario: a ~1000-token Markdown document, a one-word edit near its end,
then an invoked `textDocument/inlineCompletion` for an 8-token suggestion at the cursor.
- "prefix reuse": the same document each time, so the server's prompt keeps its start and the
  engine feeds only the tokens after the edit;
- "no reuse" (baseline, same run): two documents of the same size take turns, so each request
  finds the other's tokens in the cache and prefills all ~1000 tokens.

Weights: GPT-2 124M's shape with random values (tests/factory.gpt2_124m); speed does not depend
on trained values. Usage (from the repo root):

    .venv/bin/python bench/lsp_latency.py [--runs 15] [--model DIR] [--tokens 8]
    .venv/bin/python bench/lsp_latency.py --fim --model engine/default_model

`--fim` puts the cursor before the document's last paragraph, so there is text after it, and runs
the prefix-reuse scenario twice in one run: on the model as it is (its card declares
fill-in-the-middle, so the server sends the suffix too) and on a copy whose card does not
(prefix only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from queue import Queue
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = "harbour evening lantern quiet garden window letter river morning silver".split()
STORY = (
    "The fishing boats came back late that evening, and the harbour filled with voices. "
    "Anna walked along the quay with her brother, counting the lanterns that swung above "
    "the water. Nobody had seen the old lighthouse keeper since the storm; some said he had "
    "gone inland to his sister, others that he never left the tower at all. "
)
OTHER = (
    "In the spring the village school reopened after the long winter, and the children "
    "brought flowers for the new teacher. She had come from the city with a trunk of books "
    "and a violin that nobody had heard her play. By summer the whole street knew her name. "
)


class LspClient:
    """A minimal JSON-RPC client over a subprocess' stdio (Content-Length framing)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        self.replies: Queue[tuple[float, dict[str, Any]]] = Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        from scribe.plugins.servers.lsp_framing import FrameReader  # the server's own framing

        assert self.proc.stdout is not None
        frames = FrameReader(self.proc.stdout)
        while (body := frames.read_message()) is not None:
            message = json.loads(body)
            if "id" in message and "method" not in message:
                self.replies.put((time.perf_counter(), message))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> tuple[float, Any]:
        """(seconds from sending the request to reading its response, result)."""
        self.next_id += 1
        sent = time.perf_counter()
        self._send({"id": self.next_id, "method": method, "params": params})
        while True:
            received, message = self.replies.get(timeout=600)
            if message["id"] == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return received - sent, message["result"]

    def close(self) -> None:
        self.request("shutdown", None)
        self.notify("exit", None)
        self.proc.wait(timeout=60)


def document(text: str, tokens: int, encode: Any) -> str:
    """About `tokens` tokens of `text` repeated, cut at a word end."""
    doc = ""
    while len(encode(doc)) < tokens:
        doc += text
    words = doc.split(" ")
    while len(encode(" ".join(words))) > tokens:
        words.pop()
    return " ".join(words)


def one_word_edit(doc: str, step: int) -> str:
    """Replace the last word: the kind of edit a writer makes while typing."""
    return doc[: doc.rindex(" ") + 1] + WORDS[step % len(WORDS)]


SUFFIX = "\n\nThe next morning the sea was calm again, and the boats went out at dawn.\n"


def complete(client: LspClient, uri: str, text: str) -> tuple[float, dict[str, Any]]:
    """A completion at the end of `text` (the text before the cursor)."""
    lines = text.split("\n")
    params = {
        "textDocument": {"uri": uri},
        "position": {"line": len(lines) - 1, "character": len(lines[-1])},
        "context": {"triggerKind": 1},
    }
    seconds, _ = client.request("textDocument/inlineCompletion", params)
    _, status = client.request("scribe/status", None)
    return seconds, status["last"]


def scenario(
    client: LspClient, docs: dict[str, str], runs: int, after: str = ""
) -> list[tuple[float, dict]]:
    """`docs` holds the text before the cursor; `after` follows it in every document."""
    versions = dict.fromkeys(docs, 1)
    for uri, text in docs.items():  # the first request per document is not measured
        complete(client, uri, text)
    results = []
    uris = list(docs)
    for step in range(runs):
        uri = uris[step % len(uris)]
        docs[uri] = one_word_edit(docs[uri], step)
        versions[uri] += 1
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": versions[uri]},
                "contentChanges": [{"text": docs[uri] + after}],
            },
        )
        results.append(complete(client, uri, docs[uri]))
    return results


def report(name: str, results: list[tuple[float, dict]]) -> float:
    ms = sorted(seconds * 1000 for seconds, _ in results)
    last = [info for _, info in results]
    median = statistics.median(ms)
    print(
        f"{name:<22} median {median:7.0f} ms   min {ms[0]:6.0f}   max {ms[-1]:6.0f}   "
        f"prompt {statistics.median(i['prompt_tokens'] for i in last):5.0f} tok   "
        f"fed {statistics.median(i['prompt_tokens'] - i['reused_tokens'] for i in last):5.0f} tok"
        f"   generated {statistics.mean(i['new_tokens'] for i in last):4.1f} tok"
    )
    first = statistics.median(i["first_token_ms"] for i in last)
    whole = statistics.median(i["total_ms"] for i in last)
    print(f"{'':<22} in the server: first token {first:.0f} ms, whole request {whole:.0f} ms")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="measured requests per scenario")
    parser.add_argument("--model", help="a model folder (default: GPT-2 124M-shaped, random)")
    parser.add_argument("--tokens", type=int, default=8, help="suggestion length in tokens")
    parser.add_argument("--doc-tokens", type=int, default=1000, help="document length")
    parser.add_argument("--fim", action="store_true", help="FIM versus prefix-only, see above")
    args = parser.parse_args()
    if args.fim:
        return fim_comparison(args)

    from tests import factory

    with tempfile.TemporaryDirectory(prefix="scribe-bench-") as tmp:
        model = args.model or str(factory.gpt2_124m(Path(tmp) / "gpt2-124m"))
        encode = factory.gpt2_tokenizer().encode
        env = dict(os.environ, SCRIBE_HOME=str(Path(tmp) / "home"), HF_HUB_OFFLINE="1")
        command = [sys.executable, "-m", "scribe.tui.cli", "lsp", "--model", model]
        client = LspClient([*command, "--debounce-ms", "0", "--max-tokens", str(args.tokens)], env)
        client.request("initialize", {"processId": os.getpid(), "capabilities": {}})
        client.notify("initialized", {})
        while client.request("scribe/status", None)[1]["state"] == "loading":
            time.sleep(0.2)
        docs = {
            "file:///bench/a.md": document(STORY, args.doc_tokens, encode),
            "file:///bench/b.md": document(OTHER, args.doc_tokens, encode),
        }
        for uri, text in docs.items():
            item = {"uri": uri, "languageId": "markdown", "version": 1, "text": text}
            client.notify("textDocument/didOpen", {"textDocument": item})
        cpus = len(os.sched_getaffinity(0))
        print(
            f"scribe lsp, GPT-2 124M shape, {args.doc_tokens}-token document, "
            f"{args.tokens}-token suggestion, {args.runs} runs, {cpus} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        a = next(iter(docs))
        reuse = report("prefix reuse", scenario(client, {a: docs[a]}, args.runs))
        baseline = report("no reuse (baseline)", scenario(client, dict(docs), args.runs))
        print(f"prefix reuse is {baseline / reuse:.1f}x faster (target: median <= 500 ms)")
        client.close()
    return 0


def start(model: str, tokens: int, env: dict[str, str]) -> LspClient:
    command = [sys.executable, "-m", "scribe.tui.cli", "lsp", "--model", model]
    client = LspClient([*command, "--debounce-ms", "0", "--max-tokens", str(tokens)], env)
    client.request("initialize", {"processId": os.getpid(), "capabilities": {}})
    client.notify("initialized", {})
    while client.request("scribe/status", None)[1]["state"] == "loading":
        time.sleep(0.2)
    return client


def fim_comparison(args: argparse.Namespace) -> int:
    import shutil

    from scribe.engine.runtime.model_files import resolve
    from scribe.engine.runtime.models import load

    with tempfile.TemporaryDirectory(prefix="scribe-bench-") as tmp:
        env = dict(os.environ, SCRIBE_HOME=str(Path(tmp) / "home"), HF_HUB_OFFLINE="1")
        model = resolve(args.model)
        plain = Path(tmp) / "prefix-only"
        shutil.copytree(model, plain, ignore=shutil.ignore_patterns("scribe-*.safetensors"))
        card_file = plain / "scribe.json"
        card = json.loads(card_file.read_text()) if card_file.exists() else {}
        if "fim" not in card:
            sys.exit(f"bench: {model}'s card declares no fill-in-the-middle format")
        card_file.write_text(json.dumps({k: v for k, v in card.items() if k != "fim"}))
        encode = load(str(model)).text.encode
        before = document(STORY, args.doc_tokens, encode)
        print(
            f"scribe lsp, {model.name}, cursor before the last paragraph of a "
            f"{args.doc_tokens}-token document, {args.tokens}-token suggestion, {args.runs} "
            f"runs, load average {os.getloadavg()[0]:.1f}"
        )
        medians = {}
        for name, folder in (("FIM", model), ("prefix only", plain)):
            client = start(str(folder), args.tokens, env)
            uri = "file:///bench/fim.md"
            item = {"uri": uri, "languageId": "markdown", "version": 1, "text": before + SUFFIX}
            client.notify("textDocument/didOpen", {"textDocument": item})
            fim_on = client.request("scribe/status", None)[1].get("fim")
            medians[name] = report(
                f"{name} (fim={fim_on})", scenario(client, {uri: before}, args.runs, after=SUFFIX)
            )
            client.close()
        print(f"FIM costs {medians['FIM'] / medians['prefix only']:.2f}x the prefix-only latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())

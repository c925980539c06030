"""llama.cpp's server API as llama.vim and llama.vscode use it: /health, /infill with llama.vim's
exact request body, /completion (n_predict 0 warms the cache, cache_prompt), /tokenize,
/detokenize; compact one-line JSON."""

from __future__ import annotations

import json
import re

import pytest

from tests.plugins.http.live_server import LiveServer

# llama.vim's FIM request, field for field as autoload/llama.vim builds it in s:fim_try_hint and
# sends it with json_encode (repository ggml-org/llama.vim, file autoload/llama.vim, at commit
# a1c8e6e: `let l:request = {'id_slot': 0, 'input_prefix': l:prefix, ...}`), with the plugin's
# default config (n_predict 128, stop_strings [], t_max_prompt_ms 500, first request's
# t_max_predict_ms 250, model_fim ''). Its ring-buffer chunks carry 'time': reltime(), a list.
PREFIX = 'def add(a, b):\n    """Add two numbers."""\n'
LLAMA_VIM_INFILL = {
    "id_slot": 0,
    "input_prefix": PREFIX,
    "input_suffix": "\nprint(add(1, 2))\n",
    "input_extra": [
        {
            "text": "import math\n\ndef sub(a, b):\n    return a - b\n",
            "time": [1738, 512345],
            "filename": "calc.py",
        },
    ],
    "prompt": "    return",
    "n_predict": 128,
    "stop": [],
    "n_indent": 4,
    "top_k": 40,
    "top_p": 0.90,
    "samplers": ["top_k", "top_p", "infill"],
    "stream": False,
    "cache_prompt": True,
    "t_max_prompt_ms": 500,
    "t_max_predict_ms": 250,
    "response_fields": [
        "content",
        "timings/prompt_n",
        "timings/prompt_ms",
        "timings/prompt_per_token_ms",
        "timings/prompt_per_second",
        "timings/predicted_n",
        "timings/predicted_ms",
        "timings/predicted_per_token_ms",
        "timings/predicted_per_second",
        "truncated",
        "tokens_cached",
    ],
    "model": "",
}
# s:ring_update's request: only the extra context, n_predict 0, to fill the cache ahead.
LLAMA_VIM_RING_UPDATE = {
    "id_slot": 0,
    "input_prefix": "",
    "input_suffix": "",
    "input_extra": LLAMA_VIM_INFILL["input_extra"],
    "prompt": "",
    "n_predict": 0,
    "temperature": 0.0,
    "samplers": [],
    "stream": False,
    "cache_prompt": True,
    "t_max_prompt_ms": 1,
    "t_max_predict_ms": 1,
    "response_fields": [""],
    "model": "",
}


def vim_json(body: dict) -> str:
    """What Vim's json_encode() writes: no spaces."""
    return json.dumps(body, separators=(",", ":"))


@pytest.mark.parametrize("model", ["fim", "tiny"])
def test_llama_vim_infill_is_answered_in_compact_json(live: LiveServer, model: str) -> None:
    # The server's default model is `tiny` (no FIM: prefix only); llama.vim's model_fim picks
    # the other one.
    body = {**LLAMA_VIM_INFILL, "model": "" if model == "tiny" else model}
    with live.client() as client:
        client.post("/infill", content=vim_json(LLAMA_VIM_RING_UPDATE)).raise_for_status()
        answer = client.post(
            "/infill", content=vim_json(body), headers={"Content-Type": "application/json"}
        )
    raw = answer.text
    assert answer.status_code == 200
    # llama.vim's own check before it decodes, and one line (Vim's channel reads lines).
    assert re.match(r"^\s*\{", raw) and re.search(r'"content"\s*:"', raw) and "\n" not in raw
    data = json.loads(raw)
    assert set(data) == set(LLAMA_VIM_INFILL["response_fields"])
    assert isinstance(data["content"], str) and isinstance(data["truncated"], bool)
    assert data["timings/predicted_n"] <= 128
    assert data["tokens_cached"] >= data["timings/prompt_n"]
    if data["content"].count("\n") > 0:  # n_indent 4: no line after the first starts left of it
        for line in data["content"].split("\n")[1:]:
            assert not line.strip() or line.startswith(("    ", "\t"))


def test_ring_update_fills_the_cache_and_answers_nothing(live: LiveServer) -> None:
    answer = live.post("/infill", LLAMA_VIM_RING_UPDATE)
    assert answer.status_code == 200 and answer.text == "{}"


def test_completion_warms_the_cache_then_reuses_it(live: LiveServer) -> None:
    prompt = "The quick brown fox jumps over the lazy dog. " * 3
    warm = live.post("/completion", {"prompt": prompt, "n_predict": 0})
    assert warm.status_code == 200 and warm.json()["content"] == ""
    first = live.post("/completion", {"prompt": prompt + "A", "n_predict": 4, "temperature": 0})
    assert first.json()["timings"]["cache_n"] > 0  # the warmed prompt was reused
    again = live.post(
        "/completion",
        {"prompt": prompt + "A", "n_predict": 4, "temperature": 0, "cache_prompt": False},
    )
    assert (
        again.json()["timings"]["cache_n"] == 0
        and again.json()["content"] == first.json()["content"]
    )
    data = first.json()
    assert data["stop"] is True and data["stop_type"] in ("eos", "limit", "word")
    assert data["tokens_predicted"] <= 4 and data["truncated"] is False


def test_completion_streams_sse_and_takes_token_ids(live: LiveServer) -> None:
    ids = live.post("/tokenize", {"content": "It was a bright cold day"}).json()["tokens"]
    assert live.post("/detokenize", {"tokens": ids}).json() == {
        "content": "It was a bright cold day"
    }
    pieces = live.post("/tokenize", {"content": "It was", "with_pieces": True}).json()["tokens"]
    assert "".join(p["piece"] for p in pieces) == "It was"
    request = {"prompt": ids, "n_predict": 5, "temperature": 0}
    answer = live.post("/completion", {**request, "stream": True})
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line.removeprefix("data: ")) for line in answer.text.split("\n\n") if line]
    assert all(not e["stop"] for e in events[:-1]) and events[-1]["stop"] is True
    whole = live.post("/completion", request).json()
    assert "".join(e["content"] for e in events) == whole["content"]
    assert events[-1]["tokens_predicted"] == whole["tokens_predicted"]


def test_health_and_errors_in_llamacpp_shape(live: LiveServer) -> None:
    assert live.get("/health").json() == {"status": "ok"}
    bad = live.post("/infill", {**LLAMA_VIM_INFILL, "input_extra": "not a list"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"code", "message", "type"}
    assert bad.json()["error"]["code"] == 400
    missing = live.post("/completion", {"prompt": "x", "model": "nope"})
    assert missing.status_code == 404 and "scribe models" in missing.json()["error"]["message"]
    outside = live.post("/detokenize", {"tokens": [10**9]})
    assert outside.status_code == 400

"""Bad input is a 4xx in the dialect's own error shape: never a 5xx (the openai SDK retries
those), never a traceback in a body. Unknown fields are ignored."""

from __future__ import annotations

import json

import pytest

from tests.plugins.http.live_server import LiveServer

DEEP = "[" * 100_000 + "]" * 100_000

# (path, raw body or JSON value): each one wrong in a different way.
HOSTILE = [
    ("/v1/completions", b"{not json"),
    ("/v1/completions", b"\xff\xfe{}"),
    ("/v1/completions", b""),
    ("/v1/completions", [1, 2]),
    ("/v1/completions", {"prompt": "x", "max_tokens": "ten"}),
    ("/v1/completions", {"prompt": "x", "max_tokens": 0}),
    ("/v1/completions", {"prompt": "x", "max_tokens": 10**30}),
    ("/v1/completions", {"prompt": {"text": "x"}}),
    ("/v1/completions", {"prompt": [1, "a", None]}),
    ("/v1/completions", {"prompt": [10**12]}),
    ("/v1/completions", {"prompt": "x", "stop": [1]}),
    ("/v1/completions", {"prompt": "x", "stop": ""}),
    ("/v1/completions", {"prompt": "x", "stream": "yes"}),
    ("/v1/completions", {"prompt": "x", "temperature": "hot"}),
    ("/v1/completions", {"prompt": "x", "top_p": 7}),
    ("/v1/completions", {"prompt": "x", "n": 3}),
    ("/v1/completions", {"prompt": "x", "stream_options": []}),
    ("/v1/completions", {"prompt": "\ud800"}),
    ("/v1/completions", {"model": 7, "prompt": "x"}),
    ("/v1/completions", b'{"prompt": "x", "temperature": NaN}'),
    ("/v1/completions", b'{"prompt": "x", "seed": 1e400}'),
    ("/v1/completions", DEEP.encode()),
    ("/v1/chat/completions", {"messages": "hello"}),
    ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
    ),
    ("/v1/chat/completions", {"messages": [["user", "x"]]}),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "only a system"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "tools": {}}),
    ("/api/generate", {"model": "tiny", "prompt": 5}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "options": [1]}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "options": {"num_predict": "many"}}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "keep_alive": "soon"}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "keep_alive": True}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "context": [-1]}),
    ("/api/generate", {"model": "tiny", "prompt": "x", "images": ["aGk="]}),
    ("/api/chat", {"model": "tiny", "messages": [{"role": "user"}, 5]}),
    (
        "/api/chat",
        {
            "model": "tiny",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function"}],
        },
    ),
    ("/api/show", {"model": ["tiny"]}),
    ("/api/show", {}),
    ("/completion", {"prompt": 3.5}),
    ("/completion", {"prompt": "x", "n_predict": "all"}),
    ("/completion", {"prompt": "x", "response_fields": "content"}),
    ("/completion", {"prompt": "x", "stop": "a"}),  # a string is fine for llama.cpp: see below
    ("/infill", {"input_prefix": 1}),
    ("/infill", {"input_extra": [{"text": 1}]}),
    ("/infill", {"input_extra": ["chunk"]}),
    ("/tokenize", {"content": ["x"]}),
    ("/detokenize", {"tokens": "1 2 3"}),
    ("/detokenize", {"tokens": [True]}),
]


def shape_ok(path: str, data: object) -> bool:
    """The dialect's error shape."""
    if not isinstance(data, dict):
        return False
    error = data.get("error")
    if path.startswith("/api/"):
        return isinstance(error, str) and bool(error)
    if path.startswith("/v1/"):
        return isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)
    return isinstance(error, dict) and {"code", "message", "type"} <= set(error)


@pytest.mark.parametrize(
    "path, body", HOSTILE, ids=[f"{p}-{i}" for i, (p, _) in enumerate(HOSTILE)]
)
def test_hostile_requests_get_a_4xx_in_the_dialects_shape(
    live: LiveServer, path: str, body: object
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with live.client() as client:
        answer = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert "Traceback" not in answer.text and 'File "' not in answer.text
    if body == {"prompt": "x", "stop": "a"}:
        assert answer.status_code == 200  # llama.cpp takes a string where a list is usual
        return
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert shape_ok(path, answer.json()), answer.text[:300]
    assert "\n" not in answer.text  # compact, one line


def test_unknown_fields_are_ignored_and_methods_and_paths_answer_in_shape(live: LiveServer) -> None:
    answer = live.post(
        "/v1/completions",
        {"prompt": "x", "max_tokens": 1, "frobnicate": [1], "logit_bias": {"1": 2}, "user": "me"},
    )
    assert answer.status_code == 200
    assert shape_ok("/v1/x", live.get("/v1/nowhere").json())
    assert live.get("/v1/completions").status_code == 405
    assert shape_ok("/api/x", live.get("/api/generate").json())
    assert shape_ok("/x", live.get("/nowhere").json())

"""Many clients at once: a client that leaves mid-stream cancels its generation (the server's own
figures show it stopped within a token or two), /health answers while a stream runs, requests
wait in a bounded queue (503 with Retry-After when it is full), and models load on demand with a
bounded number kept."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.plugins.http.live_server import WAIT_S, LiveServer

LONG = {
    "model": "long",
    "prompt": "It was a bright cold day",
    "max_tokens": 900,
    "temperature": 0,
    "stream": True,
}


def open_stream(client: httpx.Client, body: dict) -> tuple[httpx.Response, Iterator[str]]:
    """Start a streaming completion and read its first event (the line iterator is returned:
    dropping it would close the connection)."""
    response = client.send(client.build_request("POST", "/v1/completions", json=body), stream=True)
    assert response.status_code == 200
    lines = response.iter_lines()
    assert next(lines).startswith("data: ")
    return response, lines


@pytest.fixture
def long_loaded(live: LiveServer) -> None:
    """`long` loaded before the test starts its clock (n_predict 0 only fills the cache)."""
    assert live.post("/completion", {"model": "long", "prompt": "x", "n_predict": 0}).is_success


def test_a_client_that_leaves_cancels_its_generation(live: LiveServer, long_loaded: None) -> None:
    before = live.status()["models"]["long"]["cancelled"]
    with live.client() as client:
        response, _lines = open_stream(client, LONG)
        # While it streams, /health does not wait for it.
        assert live.get("/health").json() == {"status": "ok"}
        assert live.status()["models"]["long"]["generating"] is True
        response.close()  # the client goes away mid-stream
    live.wait_for(
        lambda: live.status()["models"]["long"]["cancelled"] == before + 1,
        "the generation to be cancelled",
    )
    model = live.status()["models"]["long"]
    last = model["last"]
    assert last["finish_reason"] == "cancelled" and model["generating"] is False
    assert last["new_tokens"] < 900 and last["tokens_after_cancel"] <= 2


def test_a_non_streaming_client_that_leaves_is_cancelled_too(
    live: LiveServer, long_loaded: None
) -> None:
    before = live.status()["models"]["long"]["cancelled"]
    body = {**LONG, "stream": False}
    with live.client() as client, pytest.raises(httpx.ReadTimeout):
        # The client gives up (and closes the connection) while the server generates.
        client.post("/v1/completions", json=body, timeout=httpx.Timeout(120, read=0.3))
    live.wait_for(
        lambda: live.status()["models"]["long"]["cancelled"] == before + 1,
        "the generation to be cancelled",
    )
    assert live.status()["models"]["long"]["last"]["new_tokens"] < 900


def test_a_full_queue_answers_503_with_retry_after(make_server) -> None:
    live = make_server(model="long", max_queue=1)

    def wait_in_the_queue_then_leave() -> None:
        with live.client() as client:
            response, _lines = open_stream(client, LONG)  # returns once it runs
            response.close()

    with live.client() as client:
        running, _lines = open_stream(client, LONG)  # running: not in the queue
        waiting = threading.Thread(target=wait_in_the_queue_then_leave)
        waiting.start()
        live.wait_for(lambda: live.status()["models"]["long"]["pending"] == 1, "one waiting")
        full = {
            "/v1/completions": live.post("/v1/completions", {**LONG, "stream": False}),
            "/api/generate": live.post("/api/generate", {"model": "long", "prompt": "x"}),
            "/completion": live.post("/completion", {"model": "long", "prompt": "x"}),
        }
        running.close()
    waiting.join(WAIT_S)
    for path, answer in full.items():
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1", path
        assert "queue is full" in json.dumps(answer.json())
    live.wait_for(lambda: live.status()["models"]["long"]["cancelled"] == 2, "both cancelled")
    assert live.status()["models"]["long"]["rejected"] == 3


def test_models_load_on_demand_within_max_loaded(make_server) -> None:
    live = make_server(max_loaded=1)
    assert set(live.status()["models"]) == {"tiny"}
    answer = live.post(
        "/api/generate",
        {"model": "fim:latest", "prompt": "x", "stream": False, "options": {"num_predict": 1}},
    )
    assert answer.status_code == 200 and answer.json()["model"] == "fim:latest"
    assert set(live.status()["models"]) == {"fim"}  # tiny was the least recently used
    # An empty name, as llama.vim sends, is the server's own model.
    answer = live.post("/infill", {"input_prefix": "It was", "n_predict": 2, "model": ""})
    assert answer.status_code == 200 and set(live.status()["models"]) == {"tiny"}
    for path, body in (
        ("/v1/completions", {"model": "ghost", "prompt": "x"}),
        ("/api/show", {"model": "ghost"}),
        ("/completion", {"model": "ghost"}),
        ("/v1/models/ghost", None),
    ):
        missing = live.post(path, body) if body is not None else live.get(path)
        assert missing.status_code == 404 and "scribe models" in missing.text, path
    # A request never opens a path it names: only listed models load.
    assert (
        live.post(
            "/completion", {"model": str(live.settings.model), "prompt": "x", "n_predict": 1}
        ).status_code
        == 200
    )
    assert live.post("/completion", {"model": "/etc", "prompt": "x"}).status_code == 404

"""A real `scribe serve --http` application on uvicorn, on 127.0.0.1 and a free port, in a thread
of the test process, over tiny models built by tests/factory.py and listed by name.

Every test in this folder shares one SCRIBE_HOME (the server reads it while it runs), with these
models under data/models/: `tiny` (128 positions, the server's default), `fim` (256 positions,
a card that declares fill-in-the-middle) and `long` (1024 positions, slow enough per token that a
client can leave mid-stream).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import factory

WAIT_S = 120  # a loaded 2-core machine: generous, and never a timing assertion


@pytest.fixture(scope="package")
def http_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("scribe-http-home")
    models = home / "data" / "models"
    factory.tiny_model(models / "tiny")
    factory.fim_model(models / "fim")
    factory.save_model(
        models / "long",
        factory.tiny_tokenizer(),
        seed=1,
        n_layer=4,
        n_head=4,
        n_embd=256,
        n_positions=1024,
    )
    with pytest.MonkeyPatch.context() as patch:  # for the server threads, between tests too
        patch.setenv("SCRIBE_HOME", str(home))
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield home


@pytest.fixture(autouse=True)
def scribe_home(http_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides the suite's per-test home: these servers outlive a test."""
    monkeypatch.setenv("SCRIBE_HOME", str(http_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return http_home


class LiveServer:
    """The application on uvicorn in a thread; `url` is http://127.0.0.1:PORT."""

    def __init__(self, wait: bool = True, **settings: Any) -> None:
        from scribe.plugins.servers.http import server
        from scribe.plugins.servers.http.app import ServerSettings

        settings.setdefault("model", "tiny")
        self.settings = ServerSettings(host="127.0.0.1", port=0, **settings)
        self.sock = server.bind("127.0.0.1", 0)
        self.url = server.url(self.sock)
        self.port = self.sock.getsockname()[1]
        self.server: Any = server.make_server(self.settings)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        self.wait_for(lambda: self.server.started, "the server to listen")
        if wait:
            self.wait_for(lambda: self.get("/health").status_code == 200, "the model to load")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=WAIT_S, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.get(path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.post(path, json=body, **kwargs)

    def status(self) -> dict[str, Any]:
        return self.get("/scribe/status").json()

    def wait_for(self, condition: Any, what: str) -> None:
        """Poll a condition on the server's own state (bounded): the test's synchronisation."""
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                if condition():
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_S)


@pytest.fixture(scope="package")
def live(http_home: Path) -> Iterator[LiveServer]:
    """The shared server: default model `tiny`, no API key."""
    server = LiveServer()
    yield server
    server.close()


@pytest.fixture
def make_server(http_home: Path) -> Iterator[Any]:
    """Start a server with other settings for one test; closed after it."""
    started: list[LiveServer] = []

    def make(wait: bool = True, **settings: Any) -> LiveServer:
        server = LiveServer(wait, **settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()

"""Fixtures of the HTTP server tests: the real application (live_server.LiveServer) in a thread
of the test process, over tiny models built by tests/factory.py and listed by name.

Every test in this folder shares one SCRIBE_HOME (the server reads it while it runs), with these
models under data/models/: `tiny` (128 positions, the server's default), `fim` (256 positions,
a card that declares fill-in-the-middle) and `long` (1024 positions, slow enough per token that a
client can leave mid-stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import factory
from tests.plugins.http.live_server import LiveServer


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

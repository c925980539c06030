"""A real `scribe serve --http` application on uvicorn, on 127.0.0.1 and a free port, in a thread
of the test process (the fixtures in conftest.py start it over their tiny models)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

WAIT_S = 120  # a loaded 2-core machine: generous, and never a timing assertion


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

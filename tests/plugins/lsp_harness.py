"""Test helpers: the `scribe` command line, and pygls' own LanguageClient driving a real
`scribe lsp` process from synchronous tests (its event loop runs in a background thread)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCRIBE = [sys.executable, "-m", "scribe.tui.cli"]
WAIT_S = 180  # generous: a loaded 2-core machine imports torch slowly; never a timing assertion


def server_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SCRIBE_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


class PyglsSession:
    """A `scribe lsp` subprocess with pygls' LanguageClient connected to its stdio."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        from pygls.lsp.client import LanguageClient

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.client = LanguageClient("scribe-tests", "1")
        self.run(self.client.start_io(*SCRIBE, "lsp", *args, env=env))

    def run(self, coro: Awaitable[T], timeout: float = WAIT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function (e.g. a notification) on the client's loop."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def request(self, method: str, params: Any, timeout: float = WAIT_S) -> Any:
        async def send() -> Any:
            return await self.client.protocol.send_request_async(method, params)

        return self.run(send(), timeout)

    @property
    def process(self) -> Any:
        return self.client._server

    def close(self) -> None:
        try:
            if self.process is not None and self.process.returncode is None:
                self.run(self.client.shutdown_async(None), timeout=30)
                self.call(lambda: self.client.exit(None))
                self.run(asyncio.wait_for(self.process.wait(), 30), timeout=40)
        finally:
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
            self.run(self.client.stop(), timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

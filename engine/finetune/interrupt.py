"""Ctrl-C and SIGTERM ask the trainer to stop at the end of the step and save; a second aborts."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopFlag:
    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._set:
            raise KeyboardInterrupt
        self._set = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers, for the duration of training (only the main thread may install them)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        # SIGTERM (a logout, `kill`, a job scheduler) saves a checkpoint just like Ctrl-C.
        signals = (signal.SIGINT, signal.SIGTERM)
        old = {sig: signal.signal(sig, self._handler) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

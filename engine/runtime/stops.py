"""Stop sequences: text is held back while it could still be the start of one, so none leaks."""

from __future__ import annotations


class StopFilter:
    def __init__(self, stops: tuple[str, ...], lstrip: bool = False) -> None:
        self._stops = stops
        self._pending = ""
        self._lstrip = lstrip  # whitespace before the first visible character is dropped
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text safe to emit now; sets `stopped` once a stop sequence appears."""
        if self._lstrip:
            text = text.lstrip()
            if not text:
                return ""
            self._lstrip = False
        if not self._stops:
            return text
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self._pending = self._pending[: min(hits)], ""
            return out
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(out) :]
        return out

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out

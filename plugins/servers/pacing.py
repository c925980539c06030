"""When editor completion starts and when it shows: the adaptive debounce, and early display.

Debounce. A generation cannot stop before its first token: the prompt's new tokens go through
the model in one pass, and only then is the cancel flag checked after every token. So a
keystroke that lands during that pass waits for it. `AdaptiveDebounce` waits, after an
automatic request, about as long as recent generations took to reach their first token (a
running average of measured times, the first one taken from the warm-up): a burst of keystrokes
then starts one generation, and a pause never costs more than about twice the cost of a start
(the ski-rental rule). With prefix reuse the embedded model reaches its first token in a few
milliseconds, so suggestions follow a pause at once; a large model, or a prompt that re-reads
the text after the cursor (fill in the middle), waits longer, never more than the ceiling. A
client that sets `debounceMs` (or `--debounce-ms`) gets that fixed wait instead.

Early display. `EarlyDisplay` hands out a prose suggestion while it is still being generated:
its first whole words at once, then more whole words at most every `interval_s`. The final
answer replaces them. (Code suggestions end at their line end, so they come whole.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_CEILING_MS = 150  # the longest adaptive wait: the old fixed debounce
SMOOTHING = 0.3  # weight of the newest measurement in the running average
PARTIAL_INTERVAL_S = 0.05  # shortest time between two partial updates of one suggestion


class AdaptiveDebounce:
    """The wait before an automatic request generates: fixed when `fixed_ms` is given, else the
    running average of measured first-token times, at most `ceiling_ms`."""

    def __init__(self, fixed_ms: int | None = None, ceiling_ms: int = DEFAULT_CEILING_MS) -> None:
        self.fixed_ms = fixed_ms
        self.ceiling_s = ceiling_ms / 1000
        self._cost_s: float | None = None  # None until the first measurement
        self._lock = threading.Lock()

    @property
    def adaptive(self) -> bool:
        return self.fixed_ms is None

    def delay_s(self) -> float:
        """Seconds an automatic request waits before it may start."""
        if self.fixed_ms is not None:
            return self.fixed_ms / 1000
        with self._lock:
            cost = self.ceiling_s if self._cost_s is None else self._cost_s
        return max(0.0, min(self.ceiling_s, cost))

    def record(self, first_token_s: float) -> None:
        """A generation reached its first token after `first_token_s` seconds of work."""
        if first_token_s <= 0:
            return
        with self._lock:
            old = self._cost_s
            self._cost_s = first_token_s if old is None else old + SMOOTHING * (first_token_s - old)


def whole_words(text: str) -> str:
    """`text` up to its last blank: the words that can no longer grow ("The ca" -> "The")."""
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
    return text[:cut].rstrip() if cut > 0 else ""


class EarlyDisplay:
    """Feeds `send` the growing suggestion in whole words: the first as soon as there is one,
    then at most every `interval_s`, and never the same text twice."""

    def __init__(self, send: Callable[[str], None], interval_s: float = PARTIAL_INTERVAL_S) -> None:
        self._send = send
        self.interval_s = interval_s
        self.sent = ""
        self._sent_at = 0.0

    def offer(self, text: str) -> None:
        shown = whole_words(text)
        if not shown.strip() or shown == self.sent or not shown.startswith(self.sent):
            return
        now = time.monotonic()
        if self.sent and now - self._sent_at < self.interval_s:
            return
        self.sent, self._sent_at = shown, now
        self._send(shown)

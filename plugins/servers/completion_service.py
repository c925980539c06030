"""Editor completion behind both doors (LSP and JSONL): the model, loaded once and warmed in the
worker thread; a prompt window per document (engine/prompting/editor_window.py), prefilled when
the worker is idle (a document just opened, the cursor where typing will start); stop rules; the
adaptive debounce and early display (pacing.py); and the figures `scribe/status` shows.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scribe.engine.prompting.editor_window import DEFAULT_MAX_TOKENS, EditorPrompt, EditorWindows
from scribe.plugins.servers.completion_prompt import (
    FimFormat,
    StopRule,
    is_prose,
    trim_suffix_overlap,
)
from scribe.plugins.servers.pacing import DEFAULT_CEILING_MS, AdaptiveDebounce, EarlyDisplay
from scribe.plugins.servers.request_scheduler import Job, LatestWinsScheduler

log = logging.getLogger("scribe.plugins.completion")

DEFAULT_DEBOUNCE_MS = DEFAULT_CEILING_MS  # the adaptive debounce's ceiling
SUFFIX_CHARS = 2000  # the suffix is only used to trim overlap: its first line is plenty


@dataclass(frozen=True)
class CompletionRequest:
    document: str  # a key: the LSP document URI, or the JSONL "document" field
    text: str  # the whole document (or all text before the cursor)
    cursor: int  # character offset of the cursor in `text`
    suffix: str = ""  # text after the cursor
    language: str | None = None  # editor language id; prose rules unless it names code
    max_tokens: int = DEFAULT_MAX_TOKENS


@dataclass(frozen=True)
class Suggestion:
    text: str
    prompt_tokens: int
    reused_tokens: int
    latency_s: float


Partial = Callable[[str], None]  # receives a suggestion's first whole words while it grows


class CompletionService:
    def __init__(
        self,
        model_spec: str | None,
        debounce_ms: int | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "auto",
        log_documents: bool = False,
    ) -> None:
        """`debounce_ms`: a fixed wait before automatic requests; None adapts it (pacing.py).
        `log_documents`: name each request's document (a path) in the log; off, the log holds
        figures only (--log-prompts)."""
        self.log_documents = log_documents
        self.model_spec = model_spec
        self.precision = precision
        self.debounce = AdaptiveDebounce(debounce_ms)
        self.max_tokens = max_tokens
        self.generator: Any = None  # scribe.engine.runtime.generation.Generator once loaded
        self.model_name = model_spec or "default"
        self.state = "loading"
        self.error = ""
        self.running_precision = ""  # what the engine runs the model at, once loaded
        self.fim: FimFormat | None = None  # set when the model's card declares FIM
        self.windows: EditorWindows | None = None  # the prompt windows, once loaded
        self._latencies: deque[float] = deque(maxlen=1000)
        self._stats_lock = threading.Lock()
        self.requests = 0
        self.served = 0
        self.prefilled = 0  # documents prefilled while idle
        self.last: dict[str, float] = {}  # the last served request's prompt and reused tokens
        self.scheduler = LatestWinsScheduler(startup=self._load)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self.scheduler.start()

    def close(self, timeout: float = 5.0) -> None:
        self.scheduler.close(timeout)

    @property
    def debounce_ms(self) -> int | None:
        """The fixed debounce, or None when it adapts."""
        return self.debounce.fixed_ms

    @debounce_ms.setter
    def debounce_ms(self, value: int | None) -> None:
        self.debounce.fixed_ms = value

    def _load(self) -> None:
        """Runs in the worker thread: the editor gets its `initialize` answer meanwhile."""
        started = time.perf_counter()
        try:
            # load() keeps transformers quiet: stderr is the editor's log pane.
            from scribe.engine.runtime.generation import Generator
            from scribe.engine.runtime.models import load

            loaded = load(self.model_spec, precision=self.precision)
            generator = Generator(loaded)
            generator.warm()  # the first pass pays one-time costs; the second is a typical
            warm_started = time.perf_counter()  # keystroke's: the debounce's first measure
            generator.warm()
            self.debounce.record(time.perf_counter() - warm_started)
        except Exception as err:
            self.state, self.error = "error", str(err)
            raise
        self.fim = FimFormat.from_card(loaded.card, generator.encode)
        self.windows = EditorWindows(generator.encode, generator.n_positions, self.fim)
        self.generator, self.model_name, self.state = generator, loaded.name, "warm"
        self.running_precision = getattr(generator, "precision", "")
        log.info(
            "model %s (%s) loaded and warm in %.1fs",
            loaded.path,
            getattr(generator, "precision", "?"),
            time.perf_counter() - started,
        )

    # -- requests -----------------------------------------------------------------------------
    def submit(
        self, request: CompletionRequest, automatic: bool = False, partial: Partial | None = None
    ) -> Job:
        """Queue a request; the job's future gives a Suggestion, or None when it lost. `partial`
        gets a prose suggestion's first whole words while it is being generated."""
        with self._stats_lock:
            self.requests += 1
        received = time.monotonic()
        debounce = self.debounce.delay_s() if automatic else 0.0

        def work(cancel: threading.Event) -> Suggestion | None:
            return self.complete(request, cancel, received, partial)

        return self.scheduler.submit(request.document, work, debounce)

    def prefill(self, document: str, source: Callable[[], CompletionRequest | None]) -> None:
        """Bring the model's cache to the prompt a request from `source` would have, once the
        worker is idle, so the first suggestion there only reads what was typed since. `source`
        is called then, for the text as it is by that time (None: nothing to do). A newer
        prefill replaces this one; a request for `document` drops it."""

        def work(cancel: threading.Event) -> None:
            request = source()
            if request is None or cancel.is_set() or self.generator is None:
                return
            started = time.monotonic()
            prompt = self._prompt(request)
            generator = self.generator
            ids = generator.prompt_ids(prompt.text, prompt.max_tokens)
            generator.next_logits(ids)
            with self._stats_lock:
                self.prefilled += 1
            log.info(
                "prefilled %s: %d tokens in %.0f ms",
                self._logged(document),
                len(ids),
                (time.monotonic() - started) * 1000,
            )

        self.scheduler.submit_idle(document, work)

    def cancel(self, job: Job) -> None:
        self.scheduler.cancel(job)

    def complete_now(self, request: CompletionRequest) -> Suggestion | None:
        """Run one request and wait for it (tests and benchmarks)."""
        return self.submit(request).future.result()

    def _prompt(self, request: CompletionRequest) -> EditorPrompt:
        assert self.windows is not None, "the model is loaded before any request runs"
        return self.windows.prompt(request)

    def complete(
        self,
        request: CompletionRequest,
        cancel: threading.Event,
        received: float | None = None,
        partial: Partial | None = None,
    ) -> Suggestion | None:
        """Serve one request on the calling thread (the scheduler's worker calls this); None
        when `cancel` was set before it finished. `received` is when it arrived, for latency;
        `partial`, see `submit`."""
        received = time.monotonic() if received is None else received
        from scribe.engine.runtime.options import GenerationOptions, configured_options

        generator = self.generator
        prompt = self._prompt(request)
        prose = is_prose(request.language)
        suffix = request.suffix[:SUFFIX_CHARS]
        early = EarlyDisplay(partial) if partial is not None and prose else None
        rule = StopRule(prose)
        # Near-greedy ghost text with the loop guard on; config.toml's [options] may change the
        # sampling, never the length or the stops the editor relies on.
        options = configured_options(GenerationOptions(temperature=0.0)).updated(
            max_new_tokens=prompt.max_tokens, stop=("\n\n",) if prose else ()
        )
        stream = generator.stream(prompt.text, options, cancel=cancel, heal=prompt.heal)
        try:
            for delta in stream:
                if rule.feed(delta) or cancel.is_set():
                    break
                if early is not None:
                    early.offer(trim_suffix_overlap(rule.text, suffix))
        finally:
            stream.close()  # releases the engine's lock at once when we stop early
        stats = stream.stats
        self.debounce.record(stats.first_token_s)
        if cancel.is_set():
            return None
        text = trim_suffix_overlap(rule.finish(), suffix)
        latency = time.monotonic() - received
        with self._stats_lock:
            self.served += 1
            self._latencies.append(latency)
            self.last = {
                "prompt_tokens": stats.prompt_tokens,
                "reused_tokens": stats.reused_tokens,
                "new_tokens": stats.new_tokens,
                "first_token_ms": round(stats.first_token_s * 1000, 1),
                "total_ms": round(latency * 1000, 1),
            }
        log.info(
            "served %s: %d prompt tokens (%d reused), %d chars in %.0f ms",
            self._logged(request.document),
            stats.prompt_tokens,
            stats.reused_tokens,
            len(text),
            latency * 1000,
        )
        return Suggestion(text, stats.prompt_tokens, stats.reused_tokens, latency)

    def _logged(self, document: str) -> str:
        """A document as the log names it: its path or URI only when asked (--log-prompts)."""
        return document if self.log_documents else "a document"

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._stats_lock:
            latencies = sorted(self._latencies)
            requests, served, last = self.requests, self.served, dict(self.last)
        status: dict[str, Any] = {
            "model": self.model_name,
            "state": self.state,  # "loading", "warm" or "error"
            "precision": self.running_precision,
            "fim": self.fim is not None,
            "requests": requests,
            "served": served,
            "cancelled": self.scheduler.dropped_jobs,
            "generations": self.scheduler.started_jobs,
            "prefilled": self.prefilled,
            "debounce_ms": round(self.debounce.delay_s() * 1000, 1),
            "debounce": "adaptive" if self.debounce.adaptive else "fixed",
            "pending": self.scheduler.pending(),
            "peak_pending": self.scheduler.peak_pending,
            "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
            "last": last,
        }
        if self.error:
            status["error"] = self.error
        return status


def _percentile(sorted_values: list[float], pct: int) -> float | None:
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return round(sorted_values[0] * 1000, 1)
    cuts = statistics.quantiles(sorted_values, n=100, method="inclusive")
    return round(cuts[pct - 1] * 1000, 1)

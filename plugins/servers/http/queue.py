"""One model's requests, served in turn: a bounded queue, the thread that runs it, and its figures.

A request becomes a `Job`: `prepare(generator)` builds its prompt on the worker thread (exact
token counts need the tokenizer, and a long document should not stall the event loop), then the
job streams through the engine's `Generator.stream`. Events go back to the event loop as
("ready", Plan), ("delta", text), then ("done", Outcome) or ("error", HttpError). A client that
goes away sets the job's `cancel`; the engine checks it after every token, and a job still
waiting in the queue is dropped without running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scribe.engine.errors import ScribeError
from scribe.engine.runtime.options import GenerationOptions
from scribe.engine.runtime.stream import Stream, StreamStats
from scribe.plugins.servers.http.errors import HttpError

log = logging.getLogger("scribe.plugins.http")

RETRY_AFTER_S = 1


@dataclass
class Plan:
    """What `prepare` decided: the prompt (text or ids), the options (None: only fill the cache,
    llama.cpp's `n_predict: 0`), and figures the answer reports."""

    prompt: str | list[int]
    options: GenerationOptions | None
    info: dict[str, Any] = field(default_factory=dict)
    reuse_cache: bool = True
    # Called with the text so far and the seconds since the first token: a cut point ends the
    # text there (llama.cpp's n_indent and t_max_predict_ms); None goes on.
    limit: Callable[[str, float], int | None] | None = None


@dataclass
class Outcome:
    text: str
    finish_reason: str  # "length", "eos", "stop", "limit" or "cancelled"
    stats: StreamStats
    seconds: float  # from the start of the prompt to the last token

    @property
    def stopped(self) -> bool:
        """OpenAI's and Ollama's "stop" (the model ended, or a stop text): else "length"."""
        return self.finish_reason in ("eos", "stop")


class Job:
    def __init__(self, prepare: Callable[[Any], Plan], loop: asyncio.AbstractEventLoop) -> None:
        self.prepare = prepare
        self.cancel = threading.Event()
        self.stream: Stream | None = None
        self.finished = False
        self.tokens_at_cancel: int | None = None
        self._loop = loop
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._held: tuple[str, Any] | None = None

    def emit(self, kind: str, value: Any = None) -> None:
        """From the worker thread."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: the server is stopping
            self.cancel.set()

    async def next(self) -> tuple[str, Any]:
        """The next event; deltas that are already waiting come as one (a client that reads
        slower than the model writes gets fewer, larger chunks)."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        kind, value = await self._events.get()
        while kind == "delta" and not self._events.empty():
            following = self._events.get_nowait()
            if following[0] != "delta":
                self._held = following
                break
            value += following[1]
        return kind, value

    def abandon(self) -> None:
        """The client is gone (or stopped reading): stop within a token."""
        if self.finished or self.cancel.is_set():
            return
        stream = self.stream
        self.tokens_at_cancel = stream.stats.new_tokens if stream is not None else 0
        self.cancel.set()


@dataclass
class WorkerStats:
    requests: int = 0
    served: int = 0
    cancelled: int = 0  # stopped or dropped because the client went away
    rejected: int = 0  # the queue was full
    failed: int = 0
    tokens: int = 0
    peak_pending: int = 0
    last: dict[str, Any] = field(default_factory=dict)


class Worker:
    """The thread that runs one model's jobs in arrival order."""

    def __init__(self, name: str, generator: Any, max_queue: int) -> None:
        self.name = name
        self.generator = generator
        self.max_queue = max_queue
        self.stats = WorkerStats()
        self.running: Job | None = None
        self._jobs: deque[Job] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"scribe-http:{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cv:
            if self._closed:
                raise HttpError(
                    503,
                    f"model '{self.name}' is being unloaded; send it again",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            if len(self._jobs) >= self.max_queue:
                self.stats.rejected += 1
                raise HttpError(
                    503,
                    f"{len(self._jobs)} requests are already waiting for model '{self.name}' "
                    "(the server's queue is full); try again in a moment",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._jobs.append(job)
            self.stats.requests += 1
            self.stats.peak_pending = max(self.stats.peak_pending, len(self._jobs))
            self._cv.notify()

    @property
    def pending(self) -> int:
        with self._cv:
            return len(self._jobs)

    @property
    def idle(self) -> bool:
        with self._cv:
            return not self._jobs and self.running is None

    def close(self) -> None:
        """Stop after the job that runs now; queued jobs are cancelled."""
        with self._cv:
            self._closed = True
            for job in self._jobs:
                job.cancel.set()
            self._cv.notify()

    def cancel_all(self) -> None:
        with self._cv:
            jobs = [*self._jobs, *([self.running] if self.running else [])]
        for job in jobs:
            job.abandon()

    def status(self) -> dict[str, Any]:
        with self._cv:
            stats = self.stats
            return {
                "requests": stats.requests,
                "served": stats.served,
                "cancelled": stats.cancelled,
                "rejected": stats.rejected,
                "failed": stats.failed,
                "tokens": stats.tokens,
                "generating": self.running is not None,
                "pending": len(self._jobs),
                "peak_pending": stats.peak_pending,
                "last": dict(stats.last),
            }

    # -- the thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._closed:
                    self._cv.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self.running = job
            final = None
            try:
                final = self._serve(job)
            finally:
                job.finished = True
                with self._cv:
                    self.running = None  # idle before the client hears: keep_alive 0 unloads
                if final is not None:
                    job.emit(*final)

    def _serve(self, job: Job) -> tuple[str, Any] | None:
        """Run one job; the last event to send (sent once the worker is idle again)."""
        if job.cancel.is_set():
            with self._cv:
                self.stats.cancelled += 1
            return None
        plan = self._prepare(job)
        if plan is None:
            return None
        job.emit("ready", plan)
        try:
            outcome = self._generate(job, plan)
        except Exception:
            log.exception("generation failed on %s", self.name)
            with self._cv:
                self.stats.failed += 1
            return "error", HttpError(500, "generation failed; the server log has the details")
        self._count(job, outcome)
        return "done", outcome

    def _prepare(self, job: Job) -> Plan | None:
        try:
            return job.prepare(self.generator)
        except HttpError as err:
            job.emit("error", err)
        except ScribeError as err:  # a prompt that cannot fit, a bad option value
            job.emit("error", HttpError(400, str(err)))
        except Exception:
            log.exception("building a prompt failed on %s", self.name)
            with self._cv:
                self.stats.failed += 1
            job.emit("error", HttpError(500, "the server failed to read this request; see its log"))
        return None

    def _generate(self, job: Job, plan: Plan) -> Outcome:
        generator = self.generator
        started = time.perf_counter()
        if not plan.reuse_cache:
            generator.forget_cache()
        if plan.options is None:  # fill the cache only
            ids = (
                list(plan.prompt)
                if isinstance(plan.prompt, list)
                else generator.encode(plan.prompt)
            )
            ids = ids or [generator.loaded.eos_token_id or 0]
            generator.next_logits(ids)
            stats = StreamStats(prompt_tokens=len(ids), precision=generator.precision)
            stats.first_token_s = time.perf_counter() - started
            return Outcome("", "length", stats, time.perf_counter() - started)
        stream = generator.stream(plan.prompt, plan.options, job.cancel)
        job.stream = stream
        text, reason = "", ""
        try:
            for delta in stream:
                if plan.limit is not None:
                    whole = text + delta
                    cut = plan.limit(whole, time.perf_counter() - started)
                    if cut is not None:
                        delta, text, reason = whole[len(text) : cut], whole[:cut], "limit"
                        if delta:
                            job.emit("delta", delta)
                        break
                text += delta
                job.emit("delta", delta)
                if job.cancel.is_set():
                    break
        finally:
            stream.close()  # frees the model's lock at once when we stop early
        if job.cancel.is_set():
            reason = "cancelled"
        return Outcome(
            text, reason or stream.stats.finish_reason, stream.stats, time.perf_counter() - started
        )

    def _count(self, job: Job, outcome: Outcome) -> None:
        stats = outcome.stats
        last = {
            "prompt_tokens": stats.prompt_tokens,
            "reused_tokens": stats.reused_tokens,
            "new_tokens": stats.new_tokens,
            "finish_reason": outcome.finish_reason,
            "first_token_ms": round(stats.first_token_s * 1000, 1),
            "total_ms": round(outcome.seconds * 1000, 1),
        }
        if job.tokens_at_cancel is not None:
            # Tokens made after the client went away: the engine checks after every token.
            last["tokens_after_cancel"] = max(0, stats.new_tokens - job.tokens_at_cancel)
        with self._cv:
            self.stats.tokens += stats.new_tokens
            if outcome.finish_reason == "cancelled":
                self.stats.cancelled += 1
            else:
                self.stats.served += 1
            self.stats.last = last

"""One worker thread that runs completion jobs, where the latest request for a key wins.

A model runs one request at a time, and an editor asks again on every keystroke, so:
- a new job for a key (a document) drops the queued one and sets the running one's cancel event,
  which the engine checks after every token;
- automatic requests wait out a debounce first, so a burst of keystrokes starts one generation;
- at most `max_pending` keys wait at once (the oldest is dropped), so memory stays bounded
  whatever the client sends.
A job that loses gets `None` as its result, never an exception.

Idle work (warming the cache for a document just opened) runs only when no request waits: one
slot, a newer one replaces the older, and a request for the same key drops it. It is no job: it
has no future and is not counted in the job figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("scribe.plugins.scheduler")

Work = Callable[[threading.Event], Any]


@dataclass(eq=False)
class Job:
    key: str
    work: Work
    ready_at: float  # time.monotonic() after which it may start (debounce)
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class IdleWork:
    key: str
    work: Work
    cancel: threading.Event = field(default_factory=threading.Event)


class LatestWinsScheduler:
    def __init__(self, startup: Callable[[], None] | None = None, max_pending: int = 16) -> None:
        self._startup = startup
        self.max_pending = max_pending
        self._cond = threading.Condition()
        self._pending: dict[str, Job] = {}  # insertion order = age
        self._running: Job | None = None
        self._idle: IdleWork | None = None  # waiting idle work
        self._running_idle: IdleWork | None = None
        self._closed = False
        self.startup_error: BaseException | None = None
        self.started_jobs = 0  # jobs whose work was actually run
        self.dropped_jobs = 0  # superseded, cancelled or pushed out before or while running
        self.peak_pending = 0
        self.idle_runs = 0  # idle work actually run
        self._thread = threading.Thread(target=self._loop, name="scribe-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- submitting -------------------------------------------------------------------------
    def submit(self, key: str, work: Work, debounce_s: float = 0.0) -> Job:
        job = Job(key=key, work=work, ready_at=time.monotonic() + max(0.0, debounce_s))
        with self._cond:
            if self._closed:
                self._resolve_dropped(job)
                return job
            older = self._pending.pop(key, None)
            if older is not None:
                self._resolve_dropped(older)
            if self._running is not None and self._running.key == key:
                self._running.cancel.set()
            if self._idle is not None and self._idle.key == key:
                self._idle = None  # the request warms the cache for this document itself
            if self._running_idle is not None:
                self._running_idle.cancel.set()  # checked before its work starts
            self._pending[key] = job
            while len(self._pending) > self.max_pending:
                oldest = next(iter(self._pending))
                self._resolve_dropped(self._pending.pop(oldest))
            self.peak_pending = max(self.peak_pending, len(self._pending))
            self._cond.notify_all()
        return job

    def submit_idle(self, key: str, work: Work) -> None:
        """Run `work` once the worker has nothing else to do (see the module's notes)."""
        with self._cond:
            if self._closed:
                return
            if self._idle is not None:
                self._idle.cancel.set()
            self._idle = IdleWork(key, work)
            self._cond.notify_all()

    def cancel(self, job: Job) -> None:
        """Stop a job wherever it is: queued (removed now) or running (at its next token)."""
        job.cancel.set()
        with self._cond:
            if self._pending.get(job.key) is job:
                del self._pending[job.key]
                self._resolve_dropped(job)

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            for job in self._pending.values():
                self._resolve_dropped(job)
            self._pending.clear()
            self._idle = None
            if self._running is not None:
                self._running.cancel.set()
            if self._running_idle is not None:
                self._running_idle.cancel.set()
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _resolve_dropped(self, job: Job) -> None:
        job.cancel.set()
        self.dropped_jobs += 1
        if job.future.set_running_or_notify_cancel():
            job.future.set_result(None)

    # -- the worker ---------------------------------------------------------------------------
    def _loop(self) -> None:
        if self._startup is not None:
            try:
                self._startup()
            except BaseException as err:  # reported to every request, and by status
                log.exception("start-up failed")
                self.startup_error = err
        while True:
            job = self._next_job()
            if job is None:
                return
            if isinstance(job, IdleWork):
                self._run_idle(job)
            else:
                self._run(job)

    def _next_job(self) -> Job | IdleWork | None:
        with self._cond:
            while True:
                if self._closed:
                    return None
                if not self._pending:
                    if self._idle is not None and self.startup_error is None:
                        idle, self._idle = self._idle, None
                        self._running_idle = idle
                        return idle
                    self._cond.wait()
                    continue
                job = min(self._pending.values(), key=lambda j: j.ready_at)
                delay = job.ready_at - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                del self._pending[job.key]
                if job.cancel.is_set():
                    self._resolve_dropped(job)
                    continue
                if not job.future.set_running_or_notify_cancel():
                    self.dropped_jobs += 1
                    continue  # the client cancelled it while it waited
                self._running = job
                return job

    def _run_idle(self, idle: IdleWork) -> None:
        try:
            if not idle.cancel.is_set():
                self.idle_runs += 1
                idle.work(idle.cancel)
        except Exception:  # only a warm-up: the next request shows any real problem
            log.exception("idle work for %s failed", idle.key)
        finally:
            with self._cond:
                self._running_idle = None

    def _run(self, job: Job) -> None:
        try:
            if self.startup_error is not None:
                raise self.startup_error
            self.started_jobs += 1
            result = job.work(job.cancel)
            if job.cancel.is_set():
                self.dropped_jobs += 1
                result = None
            job.future.set_result(result)
        except BaseException as err:
            job.future.set_exception(err)
        finally:
            with self._cond:
                self._running = None

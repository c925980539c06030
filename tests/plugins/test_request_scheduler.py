"""The latest-wins worker: superseding, cancelling the running job, debounce, bounded queue.

Jobs here block on events the test controls, so nothing depends on timing."""

from __future__ import annotations

import threading

import pytest

from scribe.plugins.servers.request_scheduler import LatestWinsScheduler

WAIT = 30


@pytest.fixture
def scheduler():
    s = LatestWinsScheduler()
    s.start()
    yield s
    s.close()


def blocking_job(started: threading.Event, release: threading.Event, result: str):
    def work(cancel: threading.Event) -> str:
        started.set()
        # A stand-in for a decode loop that checks the event after every token.
        while not release.wait(0.01):
            if cancel.is_set():
                return "stopped early"
        return result

    return work


def test_a_new_request_cancels_the_running_one_for_the_same_document(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    first = scheduler.submit("doc", blocking_job(started, release, "first"))
    assert started.wait(WAIT)
    second = scheduler.submit("doc", lambda cancel: "second")
    assert first.cancel.wait(WAIT)  # the running job was told to stop
    assert first.future.result(WAIT) is None  # and its answer is dropped
    assert second.future.result(WAIT) == "second"


def test_a_queued_request_is_replaced_not_run(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    busy = scheduler.submit("other", blocking_job(started, release, "busy"))
    assert started.wait(WAIT)
    ran = []
    queued = [scheduler.submit("doc", lambda cancel, i=i: ran.append(i) or i) for i in range(200)]
    assert scheduler.pending() == 1  # 200 requests, one waiting
    release.set()
    assert busy.future.result(WAIT) == "busy"
    assert queued[-1].future.result(WAIT) == 199
    assert [job.future.result(WAIT) for job in queued[:-1]] == [None] * 199
    assert ran == [199]


def test_other_documents_are_not_cancelled(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    first = scheduler.submit("a", blocking_job(started, release, "a"))
    assert started.wait(WAIT)
    second = scheduler.submit("b", lambda cancel: "b")
    assert not first.cancel.is_set()
    release.set()
    assert first.future.result(WAIT) == "a"
    assert second.future.result(WAIT) == "b"


def test_debounced_request_superseded_during_its_wait_never_runs(scheduler) -> None:
    ran = []
    slow = scheduler.submit("doc", lambda cancel: ran.append("slow"), debounce_s=60)
    fast = scheduler.submit("doc", lambda cancel: ran.append("fast") or "fast")
    assert fast.future.result(WAIT) == "fast"
    assert slow.future.result(WAIT) is None
    assert ran == ["fast"]


def test_explicit_cancel_of_a_queued_job(scheduler) -> None:
    job = scheduler.submit("doc", lambda cancel: "ran", debounce_s=60)
    scheduler.cancel(job)
    assert job.future.result(WAIT) is None
    assert scheduler.pending() == 0


def test_pending_documents_are_bounded() -> None:
    scheduler = LatestWinsScheduler(max_pending=4)  # not started: everything stays queued
    jobs = [scheduler.submit(f"doc{i}", lambda cancel: "x") for i in range(10)]
    assert scheduler.pending() == 4
    assert all(job.future.result(0) is None for job in jobs[:6])  # the oldest were dropped
    scheduler.close()
    assert all(job.future.result(0) is None for job in jobs)


def test_startup_failure_is_reported_to_each_request() -> None:
    def broken() -> None:
        raise RuntimeError("model folder is gone")

    scheduler = LatestWinsScheduler(startup=broken)
    scheduler.start()
    job = scheduler.submit("doc", lambda cancel: "never")
    with pytest.raises(RuntimeError, match="model folder is gone"):
        job.future.result(WAIT)
    scheduler.close()


# -- idle work: warming the cache while nothing else waits --------------------------------------
def test_idle_work_runs_when_nothing_else_waits(scheduler) -> None:
    ran = threading.Event()
    scheduler.submit_idle("doc", lambda cancel: ran.set())
    assert ran.wait(WAIT)
    assert scheduler.idle_runs == 1
    # It is no job: the figures of requests do not count it.
    assert (scheduler.started_jobs, scheduler.dropped_jobs, scheduler.peak_pending) == (0, 0, 0)


def test_idle_work_waits_for_requests_and_a_request_for_its_document_drops_it(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    busy = scheduler.submit("other", blocking_job(started, release, "busy"))
    assert started.wait(WAIT)
    order = []
    scheduler.submit_idle("doc", lambda cancel: order.append("idle doc"))
    scheduler.submit_idle("other", lambda cancel: order.append("idle other"))  # replaces it
    queued = scheduler.submit("doc", lambda cancel: order.append("request doc") or "done")
    release.set()
    assert busy.future.result(WAIT) == "busy" and queued.future.result(WAIT) == "done"
    finished = threading.Event()
    scheduler.submit_idle("last", lambda cancel: finished.set())
    assert finished.wait(WAIT)
    # The request ran before any idle work; of the two idle works only the newer ran.
    assert order == ["request doc", "idle other"]


def test_a_request_for_the_same_document_drops_waiting_idle_work(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    busy = scheduler.submit("other", blocking_job(started, release, "busy"))
    assert started.wait(WAIT)
    ran = []
    scheduler.submit_idle("doc", lambda cancel: ran.append("idle"))
    done = scheduler.submit("doc", lambda cancel: "request")
    release.set()
    assert busy.future.result(WAIT) == "busy" and done.future.result(WAIT) == "request"
    flushed = threading.Event()
    scheduler.submit_idle("x", lambda cancel: flushed.set())
    assert flushed.wait(WAIT)
    assert ran == []


def test_a_request_tells_running_idle_work_to_stop(scheduler) -> None:
    started, release = threading.Event(), threading.Event()
    seen = []

    def idle(cancel: threading.Event) -> None:
        started.set()
        release.wait(WAIT)
        seen.append(cancel.is_set())

    scheduler.submit_idle("doc", idle)
    assert started.wait(WAIT)
    job = scheduler.submit("another", lambda cancel: "request")
    release.set()
    assert job.future.result(WAIT) == "request"
    assert seen == [True]


def test_idle_work_after_close_or_a_failed_start_never_runs() -> None:
    failing = LatestWinsScheduler(startup=lambda: 1 / 0)
    failing.start()
    ran = []
    failing.submit_idle("doc", lambda cancel: ran.append(1))
    job = failing.submit("doc2", lambda cancel: "never")
    with pytest.raises(ZeroDivisionError):
        job.future.result(WAIT)
    failing.close()
    failing.submit_idle("doc", lambda cancel: ran.append(2))
    assert ran == []

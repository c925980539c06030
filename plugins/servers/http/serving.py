"""One request's life, the same for every dialect: find (or load) its model, queue a job, wait
for its prompt, then collect the text or stream it, with the client's disconnect cancelling the
generation. Streaming answers are SSE (OpenAI, llama.cpp) or NDJSON (Ollama)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

from scribe.engine.errors import InputError
from scribe.engine.runtime.options import GenerationOptions
from scribe.plugins.servers.http.errors import bad_request, dumps
from scribe.plugins.servers.http.models_pool import Entry, ModelPool
from scribe.plugins.servers.http.params import read_json
from scribe.plugins.servers.http.queue import Job, Outcome, Plan

log = logging.getLogger("scribe.plugins.http")
T = TypeVar("T")
MIN_TEMPERATURE = 1e-4
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ClientGone(Exception):
    """The client closed the connection before its answer was ready."""


@dataclass
class Running:
    entry: Entry
    job: Job
    plan: Plan
    keep_alive: float | None = None


def pool_of(request: Request) -> ModelPool:
    return request.app.state.pool


async def body_of(request: Request) -> dict[str, Any]:
    return await read_json(request, request.app.state.settings.max_body)


def checked(changes: dict[str, Any]) -> dict[str, Any]:
    """A request's option values, each one the engine takes (else a 400 naming it)."""
    changes = _bounded(changes)
    options_from(GenerationOptions(), **changes)
    return changes


def options_from(base: GenerationOptions, **changes: Any) -> GenerationOptions:
    """`base` with the request's values; a value the engine refuses is a 400 naming it."""
    try:
        return base.updated(**_bounded(changes))
    except InputError as err:
        raise bad_request(str(err)) from None


def _bounded(changes: dict[str, Any]) -> dict[str, Any]:
    """Values the sampler can compute with: a temperature so close to 0 that dividing by it
    overflows is greedy (as 0 is), a huge one is as flat as 100, and the repetition penalty
    stays within 1/100..100 (beyond, float32 logits overflow to inf or NaN)."""
    changes = dict(changes)
    temperature = changes.get("temperature")
    if temperature is not None and temperature > 0:
        changes["temperature"] = 0.0 if temperature < MIN_TEMPERATURE else min(temperature, 100.0)
    penalty = changes.get("repetition_penalty")
    if penalty is not None and penalty > 0:
        changes["repetition_penalty"] = min(max(penalty, 0.01), 100.0)
    return changes


def base_options() -> GenerationOptions:
    """What every door starts from: the engine's defaults with config.toml's [options]."""
    from scribe.engine.runtime.options import configured_options

    return configured_options(GenerationOptions())


async def start(
    request: Request,
    model: str | None,
    prepare: Callable[[Entry], Plan],
    keep_alive: float | None = None,
) -> Running:
    """Queue the request on its model and wait until its prompt is built (a 4xx from building
    it is still an ordinary answer, before any streaming starts)."""
    entry = await pool_of(request).get(model)
    job = Job(lambda _generator: prepare(entry), asyncio.get_running_loop())
    entry.worker.submit(job)  # 503 + Retry-After when the queue is full
    try:
        kind, value = await watched(request, job, job.next())
    except BaseException:
        pool_of(request).keep(entry, keep_alive)
        raise
    if kind == "error":
        pool_of(request).keep(entry, keep_alive)
        raise value
    return Running(entry, job, value, keep_alive)


async def watched(request: Request, job: Job, work: Awaitable[T]) -> T:
    """`work`, unless the client disconnects first: then the job is cancelled."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    job.abandon()
    raise ClientGone


async def _disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def finish(request: Request, running: Running) -> Outcome:
    """Wait for the whole text (a non-streaming answer)."""

    async def drain() -> Outcome:
        while True:
            kind, value = await running.job.next()
            if kind == "done":
                return value
            if kind == "error":
                raise value

    try:
        outcome = await watched(request, running.job, drain())
    finally:
        pool_of(request).keep(running.entry, running.keep_alive)
    note(request, running, outcome)
    return outcome


async def events(request: Request, running: Running) -> AsyncIterator[tuple[str, Any]]:
    """("delta", text) ... then ("done", Outcome) or ("error", HttpError). Leaving early (the
    client went away: Starlette cancels the response) cancels the generation."""
    try:
        while True:
            kind, value = await running.job.next()
            if kind == "done":
                note(request, running, value)
            yield kind, value
            if kind in ("done", "error"):
                return
    finally:
        running.job.abandon()
        pool_of(request).keep(running.entry, running.keep_alive)


def note(request: Request, running: Running, outcome: Outcome) -> None:
    """One log line per generation: figures only, unless --log-prompts."""
    stats = outcome.stats
    log.info(
        "%s %s: %d prompt tokens (%d reused), %d new, %s, %.0f ms%s",
        request.url.path,
        running.entry.name,
        stats.prompt_tokens,
        stats.reused_tokens,
        stats.new_tokens,
        outcome.finish_reason,
        outcome.seconds * 1000,
        ", truncated" if running.plan.info.get("truncated") else "",
    )
    if request.app.state.settings.log_prompts:
        prompt = running.plan.prompt
        if isinstance(prompt, list):
            prompt = running.entry.generator.decode(prompt)
        log.info("prompt: %r", prompt)
        log.info("answer: %r", outcome.text)


class Streaming(StreamingResponse):
    """A streaming answer that cancels its generation however it ends: Starlette cancels the
    response on a disconnect, possibly before the body's first chunk was asked for (when the
    body's own `finally` never runs)."""

    def __init__(self, running: Running, body: AsyncIterator[bytes], media_type: str) -> None:
        super().__init__(body, media_type=media_type, headers=STREAM_HEADERS)
        self.running = running

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.running.job.abandon()


def sse(running: Running, chunks: AsyncIterator[Any], done: bool = True) -> Streaming:
    """Server-sent events: `data: {json}` per chunk, then `data: [DONE]` (OpenAI's end)."""

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield f"data: {dumps(chunk)}\n\n".encode("ascii")
        if done:
            yield b"data: [DONE]\n\n"

    return Streaming(running, body(), "text/event-stream")


def ndjson(running: Running, chunks: AsyncIterator[Any]) -> Streaming:
    """One JSON object per line, no blank lines (Ollama's streaming)."""

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield (dumps(chunk) + "\n").encode("ascii")

    return Streaming(running, body(), "application/x-ndjson")

"""OpenAI's API: /v1/models, /v1/completions, /v1/chat/completions (SSE streaming and not).

`usage` is in every non-streaming answer (and in the last chunk of a stream, or in a final
`choices: []` chunk when `stream_options.include_usage` asks, as OpenAI sends it); `text` and
`content` are never null; `stop` is a string or a list; `finish_reason` is "stop" or "length".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from scribe.engine.version import scribe_version
from scribe.plugins.servers.http import prompts, serving
from scribe.plugins.servers.http.errors import JsonAnswer, bad_request, error_body
from scribe.plugins.servers.http.params import Fields, check_text, token_ids
from scribe.plugins.servers.http.queue import Outcome
from scribe.plugins.servers.http.request_fields import messages_of, openai_options


def fingerprint() -> str:
    return f"scribe-{scribe_version()}"


async def list_models(request: Request) -> JsonAnswer:
    listed = await serving.pool_of(request).listing()
    return JsonAnswer(
        {"object": "list", "data": [_model(item) for item in listed if not item.problem]}
    )


async def get_model(request: Request) -> JsonAnswer:
    name, _spec, _path = await serving.pool_of(request).resolve(request.path_params["model"])
    for item in await serving.pool_of(request).listing():
        if item.name == name:
            return JsonAnswer(_model(item))
    return JsonAnswer({"id": name, "object": "model", "created": 0, "owned_by": "scribe"})


def _model(item: Any) -> dict[str, Any]:
    try:
        created = int(item.path.stat().st_mtime)
    except OSError:
        created = 0
    return {"id": item.name, "object": "model", "created": created, "owned_by": "scribe"}


def usage(outcome: Outcome) -> dict[str, Any]:
    stats = outcome.stats
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.new_tokens,
        "total_tokens": stats.prompt_tokens + stats.new_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.reused_tokens},
    }


def finish_reason(outcome: Outcome) -> str:
    return "stop" if outcome.stopped else "length"


def _prompt(body: Fields) -> str | list[int]:
    """A string, or token ids; OpenAI's lists of several prompts are one prompt here."""
    value = body.data.get("prompt")
    if value is None:
        return ""
    if isinstance(value, str):
        return check_text(value, "prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str | list):
        return _prompt(Fields({"prompt": value[0]}))
    if isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    ):
        return value
    if isinstance(value, list) and len(value) > 1:
        raise bad_request(
            "this server answers one prompt per request; send them one by one", "prompt"
        )
    raise bad_request('"prompt" must be a string or an array of token ids', "prompt")


def closing(
    head: dict[str, Any], last: dict[str, Any], stats: Outcome, include_usage: bool
) -> list[dict[str, Any]]:
    """A stream's last chunks: the finish reason with the usage on it, or (stream_options
    include_usage) the usage in a chunk of its own after it, as OpenAI sends them."""
    if include_usage:
        return [{**last, "usage": None}, {**head, "choices": [], "usage": usage(stats)}]
    return [{**last, "usage": usage(stats)}]


async def completions(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    model = body.string("model", "")
    prompt = _prompt(body)
    suffix = body.string("suffix", "") or ""
    stream = body.boolean("stream", False)
    include_usage = body.object("stream_options").boolean("include_usage", False)
    echo = body.boolean("echo", False)
    requested = body.max_tokens("max_tokens", 16)
    options = serving.options_from(serving.base_options(), **openai_options(body))

    def prepare(entry: Any) -> Any:
        text = prompt
        if isinstance(text, list):
            text = token_ids(text, "prompt", int(entry.generator.loaded.config["vocab_size"]))
        return prompts.text_plan(entry, text, options, requested, suffix)

    running = await serving.start(request, model, prepare)
    name = model or running.entry.name
    created, ident = int(time.time()), f"cmpl-{uuid.uuid4().hex}"
    echoed = ""
    if echo:
        echoed = prompt if isinstance(prompt, str) else running.entry.generator.decode(prompt)
    head = {
        "id": ident,
        "object": "text_completion",
        "created": created,
        "model": name,
        "system_fingerprint": fingerprint(),
    }
    if not stream:
        outcome = await serving.finish(request, running)
        choice = {
            "text": echoed + outcome.text,
            "index": 0,
            "logprobs": None,
            "finish_reason": finish_reason(outcome),
        }
        return JsonAnswer(
            {**head, "choices": [choice], "usage": usage(outcome), "scribe": running.plan.info}
        )

    def choice(text: str, reason: str | None) -> dict[str, Any]:
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        extra = {"usage": None} if include_usage else {}
        if echoed:
            yield {**head, "choices": [choice(echoed, None)], **extra}
        async for kind, value in serving.events(request, running):
            if kind == "delta":
                yield {**head, "choices": [choice(value, None)], **extra}
            elif kind == "error":
                yield error_body("openai", value)
            else:
                last = {**head, "choices": [choice("", finish_reason(value))]}
                for chunk in closing(head, last, value, include_usage):
                    yield chunk

    return serving.sse(running, chunks())


async def chat(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    model = body.string("model", "")
    messages = messages_of(body)
    stream = body.boolean("stream", False)
    include_usage = body.object("stream_options").boolean("include_usage", False)
    requested = body.max_tokens("max_completion_tokens")
    requested = requested or body.max_tokens("max_tokens")
    body.array("tools")  # checked, not used: the model answers in text
    changes = openai_options(body)
    stops = changes.pop("stop", None) or ()
    if requested is not None:
        changes["max_new_tokens"] = requested
    changes = serving.checked(changes)  # a bad value fails now, not once queued

    def prepare(entry: Any) -> Any:
        return prompts.chat_plan(entry, messages, changes, stops)

    running = await serving.start(request, model, prepare)
    name = model or running.entry.name
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": fingerprint(),
    }
    if not stream:
        outcome = await serving.finish(request, running)
        message = {"role": "assistant", "content": outcome.text}
        choice = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish_reason(outcome),
        }
        return JsonAnswer(
            {**head, "choices": [choice], "usage": usage(outcome), "scribe": running.plan.info}
        )
    head["object"] = "chat.completion.chunk"

    def choice_delta(delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        extra = {"usage": None} if include_usage else {}
        yield {
            **head,
            "choices": [choice_delta({"role": "assistant", "content": ""}, None)],
            **extra,
        }
        async for kind, value in serving.events(request, running):
            if kind == "delta":
                yield {**head, "choices": [choice_delta({"content": value}, None)], **extra}
            elif kind == "error":
                yield error_body("openai", value)
            else:
                last = {**head, "choices": [choice_delta({}, finish_reason(value))]}
                for chunk in closing(head, last, value, include_usage):
                    yield chunk

    return serving.sse(running, chunks())


routes = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/chat/completions", chat, methods=["POST"]),
]

"""Ollama's API: /api/tags, /api/show, /api/generate, /api/chat, /api/version, /api/ps.

Answers stream as NDJSON unless `"stream": false`: one object per line, the last with
`done: true`, its `done_reason` and the durations in nanoseconds. Names carry Ollama's ":latest"
tag; `keep_alive` (seconds, or a duration such as "5m"; negative keeps the model, 0 unloads it)
is honoured. `suffix` fills in the middle when the model's card declares FIM, and /api/show's
template advertises `.Suffix` only then.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from scribe.plugins.servers.http import prompts, serving
from scribe.plugins.servers.http.errors import JsonAnswer, bad_request, error_body
from scribe.plugins.servers.http.params import Fields, token_ids
from scribe.plugins.servers.http.queue import Outcome
from scribe.plugins.servers.http.request_fields import keep_alive, messages_of, ollama_options

VERSION = "0.9.0"  # the Ollama API this server follows (clients check for a recent one)
FOREVER = "2318-01-01T00:00:00Z"  # what Ollama reports as the expiry of a model kept for ever


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _digest(item: Any) -> str:
    return hashlib.sha256(str(item.path).encode("utf-8", "replace")).hexdigest()


def _details(item: Any, precision: str = "") -> dict[str, Any]:
    size = item.parameters
    label = f"{size / 1e9:.1f}B" if size >= 1e9 else f"{size / 1e6:.1f}M"
    return {
        "parent_model": "",
        "format": "safetensors",
        "family": "gpt2",
        "families": ["gpt2"],
        "parameter_size": label,
        "quantization_level": precision or "auto",
    }


def _modified(item: Any) -> str:
    try:
        stamp = item.path.stat().st_mtime
    except OSError:
        stamp = 0
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


async def tags(request: Request) -> JsonAnswer:
    listed = await serving.pool_of(request).listing()
    models = [
        {
            "name": f"{item.name}:latest",
            "model": f"{item.name}:latest",
            "modified_at": _modified(item),
            "size": item.size_bytes,
            "digest": _digest(item),
            "details": _details(item),
        }
        for item in listed
        if not item.problem
    ]
    return JsonAnswer({"models": models})


async def show(request: Request) -> JsonAnswer:
    body = Fields(await serving.body_of(request))
    requested = body.string("model") or body.string("name")
    if not requested:
        raise bad_request('"model" is required: the name of the model to show', "model")
    pool = serving.pool_of(request)
    name, _spec, path = await pool.resolve(requested)
    item = next((i for i in await pool.listing() if i.path == path), None)
    entry = pool.entries.get(path)
    card, markers = await asyncio.to_thread(_card, path)
    if entry is not None:  # loaded: the markers are known to be single tokens of the model
        fim = entry.fim
        markers = (fim.prefix, fim.suffix, fim.middle) if fim is not None else None
    if markers is not None:
        pre, suf, mid = markers
        template = (
            f"{{{{- if .Suffix }}}}{pre}{{{{ .Prompt }}}}{suf}{{{{ .Suffix }}}}{mid}"
            "{{- else }}{{ .Prompt }}{{- end }}"
        )
    else:
        template = "{{ .Prompt }}"
    from scribe.engine.prompting.chat_format import ChatFormat

    stops = ChatFormat.for_model(card).stop
    what = item or entry
    context = item.context if item is not None else entry.n_positions if entry else None
    precision = getattr(entry.generator, "precision", "") if entry is not None else ""
    return JsonAnswer(
        {
            "license": str(card.get("license", "")),
            "modelfile": f'# scribe model {name}\nFROM {path}\nTEMPLATE """{template}"""\n',
            "parameters": "\n".join(f"stop {json.dumps(stop)}" for stop in stops),
            "template": template,
            "details": _details(what, precision),
            "model_info": {
                "general.architecture": "gpt2",
                "general.parameter_count": getattr(what, "parameters", 0),
                "gpt2.context_length": context,
            },
            "capabilities": ["completion", "insert"] if markers is not None else ["completion"],
            "modified_at": _modified(what),
        }
    )


def _card(path: Any) -> tuple[dict[str, Any], tuple[str, str, str] | None]:
    """The model card, and its FIM markers when it declares them."""
    from scribe.engine.runtime.model_card import read_card

    try:
        card = read_card(path)
    except Exception:  # a damaged card: as `scribe models` does, show the rest
        return {}, None
    return card.as_dict(), card.fim.markers if card.fim else None


async def version(request: Request) -> JsonAnswer:
    return JsonAnswer({"version": VERSION})


async def ps(request: Request) -> JsonAnswer:
    pool = serving.pool_of(request)
    models = []
    for entry in pool.entries.values():
        if entry.expires_at is None:
            expires = FOREVER
        else:
            left = entry.expires_at - time.monotonic()
            expires = datetime.fromtimestamp(time.time() + left, UTC).isoformat()
        models.append(
            {
                "name": f"{entry.name}:latest",
                "model": f"{entry.name}:latest",
                "size": entry.size_bytes,
                "digest": _digest(entry),
                "details": _details(entry, getattr(entry.generator, "precision", "")),
                "expires_at": expires.replace("+00:00", "Z"),
                "size_vram": 0,
            }
        )
    return JsonAnswer({"models": models})


def _final(outcome: Outcome) -> dict[str, Any]:
    stats = outcome.stats
    prompt_ns = int(stats.first_token_s * 1e9)
    return {
        "done": True,
        "done_reason": "stop" if outcome.stopped else "length",
        "total_duration": int(outcome.seconds * 1e9),
        "load_duration": 0,
        "prompt_eval_count": stats.prompt_tokens - stats.reused_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": stats.new_tokens,
        "eval_duration": int(stats.decode_s * 1e9),
    }


async def _lifecycle(
    request: Request, model: str, alive: float | None, chat: bool = False
) -> JsonAnswer:
    """A request with nothing to write: load the model (or unload it, with keep_alive 0)."""
    pool = serving.pool_of(request)
    entry = await pool.get(model)
    pool.keep(entry, alive)
    said = {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
    return JsonAnswer(
        {
            "model": model or f"{entry.name}:latest",
            "created_at": now(),
            **said,
            "done": True,
            "done_reason": "unload" if alive == 0 else "load",
        }
    )


async def generate(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    model = body.string("model", "") or ""
    prompt = body.string("prompt")
    suffix = body.string("suffix", "") or ""
    system = body.string("system")
    raw = body.boolean("raw", False)
    stream = body.boolean("stream", True)
    alive = keep_alive(body)
    context = body.array("context")
    body.string("template")
    if body.array("images"):
        raise bad_request("this model reads text only: images are not supported", "images")
    changes, requested = ollama_options(body)
    options = serving.options_from(serving.base_options(), **changes)
    if prompt is None and not suffix:
        return await _lifecycle(request, model, alive)
    text = prompt or ""
    if system and not raw:
        text = f"{system}\n\n{text}"

    def prepare(entry: Any) -> Any:
        full = text
        if context and not raw:
            vocab = int(entry.generator.loaded.config["vocab_size"])
            full = entry.generator.decode(token_ids(context, "context", vocab)) + text
        return prompts.text_plan(entry, full, options, requested, suffix)

    running = await serving.start(request, model, prepare, alive)
    name = model or f"{running.entry.name}:latest"

    def last(outcome: Outcome) -> dict[str, Any]:
        chunk = {"model": name, "created_at": now(), "response": "", **_final(outcome)}
        if not raw:
            chunk["context"] = running.entry.generator.encode(text + outcome.text)[-4096:]
        return chunk

    if not stream:
        outcome = await serving.finish(request, running)
        return JsonAnswer({**last(outcome), "response": outcome.text})

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        async for kind, value in serving.events(request, running):
            if kind == "delta":
                yield {"model": name, "created_at": now(), "response": value, "done": False}
            elif kind == "error":
                yield error_body("ollama", value)
            else:
                yield last(value)

    return serving.ndjson(running, chunks())


async def chat(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    model = body.string("model", "") or ""
    stream = body.boolean("stream", True)
    alive = keep_alive(body)
    if body.array("tools"):
        raise bad_request(f"model '{model}' does not support tools", "tools")
    messages = messages_of(body, images=True)
    changes, requested = ollama_options(body)
    stops = changes.pop("stop", None) or ()
    if requested is not None:
        changes["max_new_tokens"] = requested
    changes = serving.checked(changes)
    if not messages:
        return await _lifecycle(request, model, alive, chat=True)

    def prepare(entry: Any) -> Any:
        return prompts.chat_plan(entry, messages, changes, stops)

    running = await serving.start(request, model, prepare, alive)
    name = model or f"{running.entry.name}:latest"

    def message(text: str) -> dict[str, Any]:
        return {"role": "assistant", "content": text}

    if not stream:
        outcome = await serving.finish(request, running)
        return JsonAnswer(
            {
                "model": name,
                "created_at": now(),
                "message": message(outcome.text),
                **_final(outcome),
            }
        )

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        async for kind, value in serving.events(request, running):
            if kind == "delta":
                yield {"model": name, "created_at": now(), "message": message(value), "done": False}
            elif kind == "error":
                yield error_body("ollama", value)
            else:
                yield {"model": name, "created_at": now(), "message": message(""), **_final(value)}

    return serving.ndjson(running, chunks())


async def root(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")


routes = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/api/version", version, methods=["GET"]),
    Route("/api/tags", tags, methods=["GET"]),
    Route("/api/ps", ps, methods=["GET"]),
    Route("/api/show", show, methods=["POST"]),
    Route("/api/generate", generate, methods=["POST"]),
    Route("/api/chat", chat, methods=["POST"]),
]

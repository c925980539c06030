"""llama.cpp's server API: /health, /completion, /infill, /tokenize, /detokenize, /props.

Answers are compact one-line JSON (llama.vim reads `"content":"` with no space, one line at a
time). /infill takes llama.vim's body as it sends it: `input_prefix`, `input_suffix`,
`input_extra` (chunks of other text), `prompt` (the text typed on the cursor's line), with
`n_predict: 0` meaning "only fill the cache" and `cache_prompt: false` a prompt computed anew;
`response_fields` picks fields by path ("timings/prompt_n"), as llama.cpp does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from scribe.plugins.servers.http import prompts, serving
from scribe.plugins.servers.http.errors import HttpError, JsonAnswer, bad_request, error_body
from scribe.plugins.servers.http.params import Fields, check_text, token_ids
from scribe.plugins.servers.http.queue import Outcome, Plan
from scribe.plugins.servers.http.request_fields import llamacpp_options

STOP_TYPES = {"eos": "eos", "stop": "word", "length": "limit", "limit": "limit"}


async def health(request: Request) -> JsonAnswer:
    pool = serving.pool_of(request)
    if pool.state == "ready":
        return JsonAnswer({"status": "ok"})
    if pool.state == "loading":
        raise HttpError(503, "Loading model")
    raise HttpError(500, f"the model failed to load: {pool.error}")


def _prompt(body: Fields, vocab: int, encode: Any) -> str | list[int]:
    """A string, token ids, or llama.cpp's mix of both ([12, " text", 34])."""
    value = body.data.get("prompt")
    if value is None:
        return ""
    if isinstance(value, str):
        return check_text(value, "prompt")
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str | list):
        return _prompt(Fields({"prompt": value[0]}), vocab, encode)
    if isinstance(value, list) and value and all(isinstance(p, str | int) for p in value):
        ids: list[int] = []
        for piece in value:
            if isinstance(piece, str):
                ids += encode(check_text(piece, "prompt"))
            else:
                ids += token_ids([piece], "prompt", vocab)
        return ids
    raise bad_request('"prompt" must be a string, or an array of token ids and strings', "prompt")


def _fields(body: Fields) -> list[str] | None:
    fields = body.array("response_fields")
    if fields is not None and not all(isinstance(f, str) for f in fields):
        raise bad_request('"response_fields" must be an array of strings', "response_fields")
    return fields or None


def pick(fields: list[str] | None, data: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's json_get_nested_values: each path ("timings/prompt_n") that exists, keyed by
    the path itself; all of `data` when no fields were asked for."""
    if fields is None:
        return data
    picked: dict[str, Any] = {}
    for path in fields:
        current: Any = data
        for key in path.split("/"):
            if not isinstance(current, dict) or key not in current:
                break
            current = current[key]
        else:
            picked[path] = current
    return picked


def _timings(outcome: Outcome) -> dict[str, Any]:
    stats = outcome.stats
    prompt_n = max(0, stats.prompt_tokens - stats.reused_tokens)
    prompt_ms = stats.first_token_s * 1000
    predicted_ms = stats.decode_s * 1000

    def per(n: int, ms: float) -> tuple[float, float]:
        return (ms / n if n else 0.0), (n * 1000 / ms if ms > 0 else 0.0)

    prompt_per_token, prompt_per_second = per(prompt_n, prompt_ms)
    predicted_per_token, predicted_per_second = per(stats.new_tokens, predicted_ms)
    return {
        "cache_n": stats.reused_tokens,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_per_token,
        "prompt_per_second": prompt_per_second,
        "predicted_n": stats.new_tokens,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": predicted_per_token,
        "predicted_per_second": predicted_per_second,
    }


def _final(running: serving.Running, outcome: Outcome, name: str, slot: int, text: str) -> dict:
    stats = outcome.stats
    plan: Plan = running.plan
    options = plan.options
    settings = {
        "n_predict": options.max_new_tokens if options else 0,
        "temperature": options.temperature if options else 0.0,
        "top_k": options.top_k if options else 0,
        "top_p": options.top_p if options else 1.0,
        "stop": list(options.stop) if options else [],
        "cache_prompt": plan.reuse_cache,
    }
    return {
        "index": 0,
        "content": text,
        "tokens": [],
        "id_slot": slot,
        "stop": True,
        "model": name,
        "tokens_predicted": stats.new_tokens,
        "tokens_evaluated": stats.prompt_tokens,
        "generation_settings": settings,
        "prompt": "",
        "has_new_line": "\n" in outcome.text,
        "truncated": bool(plan.info.get("truncated")),
        "stop_type": STOP_TYPES.get(outcome.finish_reason, "none"),
        "stopping_word": "",
        "tokens_cached": stats.prompt_tokens + stats.new_tokens,
        "timings": _timings(outcome),
    }


async def _answer(request: Request, body: Fields, prepare: Any) -> Any:
    model = body.string("model", "") or ""
    stream = body.boolean("stream", False)
    slot = body.integer("id_slot", 0) or 0
    fields = _fields(body)
    running = await serving.start(request, model, prepare)
    name = model or running.entry.name
    if not stream:
        outcome = await serving.finish(request, running)
        return JsonAnswer(pick(fields, _final(running, outcome, name, slot, outcome.text)))

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        async for kind, value in serving.events(request, running):
            if kind == "delta":
                yield pick(
                    fields,
                    {"index": 0, "content": value, "tokens": [], "stop": False, "id_slot": slot},
                )
            elif kind == "error":
                yield error_body("llamacpp", value)
            else:
                yield pick(fields, _final(running, value, name, slot, ""))

    return serving.sse(running, chunks(), done=False)


async def completion(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    changes, requested = llamacpp_options(body)
    options = serving.options_from(serving.base_options(), **changes)
    reuse = body.boolean("cache_prompt", True)
    body.data.get("prompt")  # read in prepare, where the tokenizer is

    def prepare(entry: Any) -> Plan:
        generator = entry.generator
        vocab = int(generator.loaded.config["vocab_size"])
        prompt = _prompt(body, vocab, generator.encode)
        if requested == 0:  # only fill the cache with the prompt
            ids = prompt if isinstance(prompt, list) else generator.encode(prompt)
            ids = ids[-(generator.n_positions - 1) :]
            return Plan(ids, None, {"prompt_tokens": len(ids), "truncated": False}, reuse)
        plan = prompts.text_plan(entry, prompt, options, requested)
        plan.reuse_cache = reuse
        return plan

    return await _answer(request, body, prepare)


def _extra(body: Fields) -> list[str]:
    chunks = body.array("input_extra") or []
    texts = []
    for index, chunk in enumerate(chunks):
        where = f"input_extra[{index}]"
        if not isinstance(chunk, dict):
            raise bad_request(f'"{where}" must be an object with "text" and "filename"', where)
        fields = Fields(chunk, f"{where}.")
        fields.string("filename")
        texts.append(fields.string("text", "") or "")
    return texts


async def infill(request: Request) -> Any:
    body = Fields(await serving.body_of(request))
    changes, requested = llamacpp_options(body)
    options = serving.options_from(serving.base_options(), **changes)
    prefix = body.string("input_prefix", "") or ""
    suffix = body.string("input_suffix", "") or ""
    middle = body.string("prompt", "") or ""
    extra = _extra(body)
    reuse = body.boolean("cache_prompt", True)
    slot = f"infill:{body.integer('id_slot', 0)}"
    limit = prompts.infill_limit(
        body.integer("n_indent", 0) or 0, body.number("t_max_predict_ms", 0) or 0
    )

    def prepare(entry: Any) -> Plan:
        plan = prompts.infill_plan(
            entry, prefix, suffix, middle, extra, options, requested, slot, reuse, limit
        )
        if requested == 0:  # llama.vim's ring update: only fill the cache with the context
            plan.options = None
        return plan

    return await _answer(request, body, prepare)


async def tokenize(request: Request) -> JsonAnswer:
    body = Fields(await serving.body_of(request))
    content = body.string("content", "") or ""
    pieces = body.boolean("with_pieces", False)
    body.boolean("add_special")
    entry = await serving.pool_of(request).get(body.string("model", ""))
    generator = entry.generator
    ids = await asyncio.to_thread(generator.encode, content)
    if not pieces:
        return JsonAnswer({"tokens": ids})
    return JsonAnswer({"tokens": [{"id": i, "piece": generator.decode([i])} for i in ids]})


async def detokenize(request: Request) -> JsonAnswer:
    body = Fields(await serving.body_of(request))
    entry = await serving.pool_of(request).get(body.string("model", ""))
    generator = entry.generator
    vocab = int(generator.loaded.config["vocab_size"])
    ids = token_ids(body.data.get("tokens", []), "tokens", vocab)
    return JsonAnswer({"content": await asyncio.to_thread(generator.decode, ids)})


async def props(request: Request) -> JsonAnswer:
    await health(request)  # 503 while the model loads
    entry = await serving.pool_of(request).get(None)
    return JsonAnswer(
        {
            "default_generation_settings": {"n_ctx": entry.n_positions, "params": {}},
            "total_slots": 1,
            "model_path": str(entry.path),
            "model_alias": entry.name,
            "modalities": {"vision": False, "audio": False},
            "build_info": "scribe",
        }
    )


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/props", props, methods=["GET"]),
    Route("/completion", completion, methods=["POST"]),
    Route("/infill", infill, methods=["POST"]),
    Route("/tokenize", tokenize, methods=["POST"]),
    Route("/detokenize", detokenize, methods=["POST"]),
]

"""What each dialect's request fields mean: generation options (OpenAI's top-level fields,
Ollama's `options`, llama.cpp's fields), Ollama's `keep_alive`, and chat messages.

Each returns plain values for `serving.checked`/`options_from`, which apply them to the engine's
`GenerationOptions`; a field of the wrong type or out of range is a 400 naming it (params.Fields).
"""

from __future__ import annotations

import re
from typing import Any

from scribe.engine.runtime.options import SEED_MAX
from scribe.plugins.servers.http.errors import bad_request
from scribe.plugins.servers.http.params import Fields, check_text
from scribe.plugins.servers.http.prompts import ROLES

DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
MAX_KEEP_S = 10 * 365 * 86400
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def settable() -> tuple[str, ...]:
    """The engine's option names (min_p is recent: a field the engine lacks is left out)."""
    from scribe.engine.runtime.options import SETTABLE

    return SETTABLE


def openai_options(body: Fields) -> dict[str, Any]:
    """The sampling fields OpenAI defines, and the common extras (top_k, min_p,
    repetition_penalty) that llama.cpp's and vLLM's OpenAI servers take too."""
    for key in ("frequency_penalty", "presence_penalty"):
        body.number(key, lo=-2, hi=2)  # checked, not applied: scribe has no such penalty
    changes: dict[str, Any] = {
        "temperature": body.number("temperature", lo=0),
        "top_p": body.number("top_p", lo=0, hi=1),
        "top_k": body.integer("top_k", lo=-1),
        "repetition_penalty": body.number("repetition_penalty", lo=0),
    }
    if changes["top_p"] == 0:  # only the likeliest token: greedy
        changes["top_p"], changes["temperature"] = None, 0.0
    if changes["top_k"] is not None and changes["top_k"] < 0:
        changes["top_k"] = 0
    if changes["repetition_penalty"] == 0:
        raise bad_request('"repetition_penalty" must be more than 0', "repetition_penalty")
    min_p = body.number("min_p", lo=0, hi=1)
    if min_p is not None and "min_p" in settable():
        changes["min_p"] = min(min_p, 0.999)
    seed = body.integer("seed")
    if seed is not None:
        changes["seed"] = seed % (SEED_MAX + 1)  # OpenAI's seeds are signed 64-bit
    stops = body.strings("stop")
    if stops is not None:
        if any(not stop for stop in stops):
            raise bad_request('"stop" cannot hold an empty string', "stop")
        changes["stop"] = tuple(stops) or None
    if body.integer("n", 1, lo=1) != 1 or body.integer("best_of", 1, lo=1) != 1:
        raise bad_request("this server writes one choice per request; leave n at 1", "n")
    body.object("stream_options")
    return {k: v for k, v in changes.items() if v is not None}


def ollama_options(body: Fields) -> tuple[dict[str, Any], int | None]:
    """Ollama's `options` as engine options, and num_predict (-1: as many as fit)."""
    options = body.object("options")
    for key in ("num_ctx", "num_keep", "repeat_last_n", "num_thread", "num_gpu"):
        options.integer(key)  # checked, not used
    changes: dict[str, Any] = {
        "temperature": options.number("temperature", lo=0),
        "top_k": options.integer("top_k", lo=0),
        "top_p": options.number("top_p", lo=0, hi=1),
        "repetition_penalty": options.number("repeat_penalty", lo=0),
    }
    if changes["top_p"] == 0:
        changes["top_p"], changes["temperature"] = None, 0.0
    if changes["repetition_penalty"] == 0:
        changes["repetition_penalty"] = None
    min_p = options.number("min_p", lo=0, hi=1)
    if min_p is not None and "min_p" in settable():
        changes["min_p"] = min(min_p, 0.999)
    seed = options.integer("seed")
    if seed is not None and seed >= 0:
        changes["seed"] = seed
    stops = options.strings("stop")
    if stops:
        changes["stop"] = tuple(stop for stop in stops if stop) or None
    predict = options.integer("num_predict")
    return {k: v for k, v in changes.items() if v is not None}, (
        None if predict is None or predict < 0 else max(predict, 1)
    )


def llamacpp_options(body: Fields) -> tuple[dict[str, Any], int | None]:
    """llama.cpp's sampling fields as engine option values, and n_predict (None: as many as
    fit)."""
    changes: dict[str, Any] = {
        "temperature": body.number("temperature"),
        "top_k": body.integer("top_k"),
        "top_p": body.number("top_p", hi=1),
        "repetition_penalty": body.number("repeat_penalty"),
    }
    if changes["temperature"] is not None and changes["temperature"] < 0:
        changes["temperature"] = 0.0  # llama.cpp: a negative temperature is greedy
    if changes["top_k"] is not None and changes["top_k"] < 0:
        changes["top_k"] = 0
    if changes["top_p"] is not None and changes["top_p"] <= 0:
        changes["top_p"], changes["temperature"] = None, 0.0
    if changes["repetition_penalty"] is not None and changes["repetition_penalty"] <= 0:
        changes["repetition_penalty"] = None
    min_p = body.number("min_p", hi=1)
    if min_p is not None and "min_p" in settable():
        changes["min_p"] = min(max(min_p, 0.0), 0.999)
    seed = body.integer("seed")
    if seed is not None and seed >= 0:
        changes["seed"] = seed % (SEED_MAX + 1)
    stops = body.strings("stop")
    if stops:
        changes["stop"] = tuple(stop for stop in stops if stop) or None
    for key in ("n_probs", "id_slot", "n_keep", "t_max_prompt_ms"):
        body.number(key)  # checked, not used
    body.array("samplers")
    predict = body.max_tokens("n_predict", below_one=True)
    changes = {k: v for k, v in changes.items() if v is not None}
    return changes, None if predict is None or predict < 0 else predict


def keep_alive(body: Fields) -> float | None:
    """Seconds (negative: for ever); a number, or a Go duration ("5m", "1h30m", "-1")."""
    value = body.data.get("keep_alive")
    seconds = None
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = body.number("keep_alive")
    elif isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        text = text.lstrip("+-")
        parts = DURATION.findall(text)
        if re.fullmatch(r"\d+(\.\d*)?", text):
            seconds = sign * float(text)
        elif text and "".join(n + u for n, u in parts) == text:
            seconds = sign * sum(float(n) * UNITS[u] for n, u in parts)
    if seconds is None:
        raise bad_request('"keep_alive" must be seconds or a duration such as "5m"', "keep_alive")
    return -1.0 if seconds > MAX_KEEP_S else seconds  # beyond any clock: for ever


def messages_of(body: Fields, images: bool = False) -> list[tuple[str, str]]:
    """(role, text) pairs of OpenAI's or Ollama's `messages` (Ollama's may be empty: a request
    that only loads the model; its messages may carry `images`, refused)."""
    items = body.array("messages") or []
    if not items and not images:
        raise bad_request('"messages" must be a non-empty array of messages', "messages")
    messages = []
    for index, item in enumerate(items):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise bad_request(f'"{where}" must be an object with "role" and "content"', where)
        fields = Fields(item, f"{where}.")
        role = fields.string("role")
        if role not in ROLES:
            raise bad_request(f'"{where}.role" must be one of {", ".join(ROLES)}', f"{where}.role")
        if images and fields.array("images"):
            raise bad_request("this model reads text only: images are not supported", where)
        messages.append((role, content_text(item.get("content"), f"{where}.content")))
    return messages


def content_text(content: Any, where: str) -> str:
    """A message's text: a string, or OpenAI's list of parts of which only text is read."""
    if content is None:
        return ""
    if isinstance(content, str):
        return check_text(content, where)
    if not isinstance(content, list):
        raise bad_request(f'"{where}" must be a string or an array of parts', where)
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(check_text(part["text"], where))
        elif kind in ("image_url", "input_audio", "file", "image"):
            raise bad_request(f'"{where}": this model reads text only, not {kind}', where)
        else:
            raise bad_request(
                f'"{where}": each part must be {{"type": "text", "text": "..."}}', where
            )
    return "\n".join(texts)

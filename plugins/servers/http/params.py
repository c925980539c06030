"""Reading a request body: JSON within the size cap, and typed fields that name what is wrong.

Unknown fields are ignored (clients send many this server has no use for); a known field of the
wrong type is a 400 naming it. `null` reads as absent, as most clients send it for "unset".
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from scribe.engine.runtime.options import MAX_NEW_TOKENS, max_tokens_in_bounds
from scribe.plugins.servers.http.errors import HttpError, bad_request

NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past `limit` bytes (checked as it arrives, so a chunked
    body is capped too), 400 for anything that is not one JSON object of valid UTF-8."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON object")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text; send a JSON object") from None
    except (ValueError, RecursionError) as err:
        raise bad_request(f"the request body is not valid JSON ({_short(err)})") from None
    if not isinstance(data, dict):
        raise bad_request(f"the request body must be a JSON object, not {_kind(data)}")
    return data


def too_large(limit: int) -> HttpError:
    return HttpError(413, f"the request body is over the server's limit of {limit} bytes")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _short(err: Exception) -> str:
    return str(err).split(":")[0] if isinstance(err, json.JSONDecodeError) else str(err)[:80]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def check_text(value: str, name: str) -> str:
    """Text the tokenizer can take: JSON may carry lone surrogates ("\\ud800"), which are no
    characters and which no encoder accepts."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f'"{name}" holds an invalid character (a lone surrogate)', name) from None
    return value


class Fields:
    """Typed access to one JSON object; `where` prefixes field names in messages ("options.")."""

    def __init__(self, data: dict[str, Any], where: str = "") -> None:
        self.data = data
        self.where = where

    def name(self, key: str) -> str:
        return self.where + key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _wrong(self, key: str, expected: str) -> HttpError:
        got = _kind(self.data.get(key))
        return bad_request(f'"{self.name(key)}" must be {expected}, not {got}', self.name(key))

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(key, NAMES[str])
        return check_text(value, self.name(key))

    def boolean(self, key: str, default: bool | None = None) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(key, NAMES[bool])
        return value

    def integer(
        self, key: str, default: int | None = None, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, NAMES[int])
        self._in_range(key, value, lo, hi)
        return value

    def number(
        self,
        key: str,
        default: float | None = None,
        lo: float | None = None,
        hi: float | None = None,
    ) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(key, NAMES[float])
        number = float(value)
        if not math.isfinite(number):
            raise self._wrong(key, "a finite number")
        self._in_range(key, number, lo, hi)
        return number

    def max_tokens(
        self, key: str, default: int | None = None, below_one: bool = False
    ) -> int | None:
        """A reply's length in tokens, within the engine's bound (options.max_tokens_in_bounds).
        `below_one`: a number under 1 passes, for the caller to read (llama.cpp's n_predict: 0
        only fills the cache, a negative one asks for as many tokens as fit)."""
        value = self.integer(key, default)
        if value is None or (below_one and value < 1) or max_tokens_in_bounds(value):
            return value
        raise self._out_of_range(key, value, None if below_one else 1, MAX_NEW_TOKENS)

    def _in_range(self, key: str, value: float, lo: float | None, hi: float | None) -> None:
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self._out_of_range(key, value, lo, hi)

    def _out_of_range(
        self, key: str, value: float, lo: float | None, hi: float | None
    ) -> HttpError:
        low = "" if lo is None else f"from {lo:g}"
        high = "" if hi is None else f"to {hi:g}" if lo is not None else f"at most {hi:g}"
        return bad_request(
            f'"{self.name(key)}" must be {(low + " " + high).strip()}, not {value:g}',
            self.name(key),
        )

    def strings(self, key: str) -> list[str] | None:
        """A string or a list of strings (OpenAI's and llama.cpp's `stop`)."""
        value = self.data.get(key)
        if value is None:
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self._wrong(key, "a string or an array of strings")
        return [check_text(item, self.name(key)) for item in items]

    def array(self, key: str) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong(key, "an array")
        return value

    def object(self, key: str) -> Fields:
        """A nested object (empty when absent)."""
        value = self.data.get(key)
        if value is None:
            return Fields({}, f"{self.name(key)}.")
        if not isinstance(value, dict):
            raise self._wrong(key, "an object")
        return Fields(value, f"{self.name(key)}.")


def token_ids(value: Any, name: str, vocab: int) -> list[int]:
    """A list of token ids, each one the model has."""
    if not isinstance(value, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    ):
        raise bad_request(f'"{name}" must be an array of token ids', name)
    bad = next((t for t in value if not 0 <= t < vocab), None)
    if bad is not None:
        raise bad_request(f'"{name}": token id {bad} is outside this model\'s 0..{vocab - 1}', name)
    return list(value)

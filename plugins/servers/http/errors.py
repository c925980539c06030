"""Errors as each dialect writes them, and the compact JSON every answer is written in.

A request's path names its dialect: `/v1/...` is OpenAI's (`{"error": {"message", "type",
"param", "code"}}`), `/api/...` Ollama's (`{"error": "..."}`), anything else llama.cpp's server's
(`{"error": {"code", "message", "type"}}`). Bad input is a 4xx with a message naming the field;
nothing a client sends becomes a 5xx (the openai SDK retries those) or a traceback in a body.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

OPENAI, OLLAMA, LLAMACPP = "openai", "ollama", "llamacpp"

# llama.cpp's server names its error types by status; OpenAI's use a few of the same names.
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
    501: "not_supported_error",
    503: "unavailable_error",
}


class HttpError(Exception):
    """An answer other than 200, written in the dialect of the request that caused it."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def bad_request(message: str, param: str | None = None) -> HttpError:
    return HttpError(400, message, param=param)


def model_not_found(name: str, problem: str = "") -> HttpError:
    why = f" ({problem})" if problem else ""
    return HttpError(
        404,
        f"model '{name}' not found{why}; `scribe models` lists the models this server can load",
        param="model",
        code="model_not_found",
    )


def dialect_of(path: str) -> str:
    if path.startswith("/v1/") or path == "/v1":
        return OPENAI
    if path.startswith("/api/") or path == "/api":
        return OLLAMA
    return LLAMACPP


def dumps(data: Any) -> str:
    """One line of compact JSON: llama.vim checks for `"content":"` with no space, and Vim's
    line-mode channel hands it one line at a time. ASCII escapes keep any text valid UTF-8."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


class JsonAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("ascii")


def error_body(dialect: str, err: HttpError) -> dict[str, Any]:
    if dialect == OLLAMA:
        return {"error": err.message}
    kind = TYPES.get(err.status, "invalid_request_error" if err.status < 500 else "server_error")
    if dialect == OPENAI:
        if err.status == 404 and err.code == "model_not_found":
            kind = "invalid_request_error"
        return {
            "error": {"message": err.message, "type": kind, "param": err.param, "code": err.code}
        }
    return {"error": {"code": err.status, "message": err.message, "type": kind}}


def error_answer(path: str, err: HttpError) -> JsonAnswer:
    return JsonAnswer(error_body(dialect_of(path), err), err.status, headers=err.headers)

"""Rules that keep a local server safe on a shared machine, checked before any work is done.

- A `Host` header that is not this server's (DNS rebinding: a web page whose name points at
  127.0.0.1) is a 403, as is a browser's `Origin` that is not a loopback page nor one named with
  `--allow-origin`; allowed origins get CORS headers and their preflight answered.
- With an API key (`--api-key` or SCRIBE_API_KEY), every path but /health needs
  `Authorization: Bearer KEY` (401 otherwise); without one, any Authorization is accepted (llm
  sends a dummy key).
- A body declared larger than the cap is a 413 before it is read (params.read_json caps what
  actually arrives, chunked bodies included).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from scribe.plugins.servers.http.errors import HttpError, error_answer

log = logging.getLogger("scribe.plugins.http")

OPEN_PATHS = frozenset({"/health"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_of(value: str) -> str:
    """The name in a Host header ("[::1]:8012" -> "::1", "LocalHost:80" -> "localhost")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class Guard:
    """ASGI middleware applying the rules above to every HTTP request."""

    def __init__(
        self,
        app: Any,
        bind_host: str,
        allow_origins: tuple[str, ...] = (),
        api_key: str | None = None,
        max_body: int = 8 << 20,
    ) -> None:
        self.app = app
        self.api_key = api_key.encode("utf-8") if api_key else None
        self.max_body = max_body
        self.origins = {origin.rstrip("/").lower() for origin in allow_origins}
        self.hosts = {host_of(bind_host)}
        self.any_ip = host_of(bind_host) in ("0.0.0.0", "::", "")
        if self.any_ip:  # reachable by any address of this machine, under its own names
            self.hosts |= {socket.gethostname().lower(), socket.getfqdn().lower()}
        self.hosts |= {urlsplit(origin).hostname or "" for origin in self.origins} - {""}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def logged_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if cors:
                    message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope.get("path", "/")
        cors: list[tuple[bytes, bytes]] = []
        try:
            origin = self._check(scope, headers)
            if origin:
                cors = [
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"Origin"),
                ]
            if scope["method"] == "OPTIONS" and origin:
                await self._preflight(headers, logged_send)
                return
            self._authorize(path, headers)
            self._size(headers)
        except HttpError as err:
            await error_answer(path, err)(scope, receive, logged_send)
        else:
            await self.app(scope, receive, logged_send)
        finally:
            log.info(
                "%s %s %s %.0f ms",
                scope["method"],
                path,
                status["code"] or "-",
                (time.perf_counter() - started) * 1000,
            )

    def _check(self, scope: dict, headers: dict[str, str]) -> str:
        """403 for a foreign Host or Origin; the allowed Origin (to echo in CORS), else ""."""
        host = headers.get("host")
        if host is not None:
            name = host_of(host)
            if not (is_loopback(name) or name in self.hosts or (self.any_ip and _is_ip(name))):
                raise HttpError(
                    403,
                    f"Host '{host}' is not this server's; if you reach it by "
                    "that name, start it with --host NAME",
                )
        origin = headers.get("origin")
        if origin is None:
            return ""
        normal = origin.strip().rstrip("/").lower()
        parts = urlsplit(normal)
        local = parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")
        if not local and normal not in self.origins:
            raise HttpError(
                403,
                f"Origin '{origin}' may not use this server; allow it with --allow-origin {origin}",
            )
        return origin.strip()

    async def _preflight(self, headers: dict[str, str], send: Any) -> None:
        asked = headers.get("access-control-request-headers", "authorization, content-type")
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-methods", b"GET, POST, HEAD, OPTIONS"),
                    (b"access-control-allow-headers", asked.encode("latin-1")),
                    (b"access-control-max-age", b"600"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _authorize(self, path: str, headers: dict[str, str]) -> None:
        if self.api_key is None or path in OPEN_PATHS:
            return
        given = headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), self.api_key
        ):
            raise HttpError(
                401,
                "this server needs an API key: send Authorization: Bearer KEY",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _size(self, headers: dict[str, str]) -> None:
        length = headers.get("content-length")
        if length is None:
            return
        try:
            size = int(length)
        except ValueError:
            raise HttpError(400, "Content-Length is not a number") from None
        if size > self.max_body:
            raise HttpError(
                413, f"the request body is over the server's limit of {self.max_body} bytes"
            )

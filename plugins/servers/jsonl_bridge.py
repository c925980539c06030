"""`scribe lsp --jsonl` / `scribe serve`: completion for scripts, one JSON object per line.

In:  {"id": 1, "prefix": "text before the cursor", "suffix": "text after", "max_tokens": 16}
     optional: "language" (e.g. "python": code rules; default prose), "document" (a key:
     requests for the same document supersede each other; a request without one is a
     document of its own, never superseded)
     {"cancel": 1}
Out: {"id": 1, "text": "the suggestion"}  or  {"id": 1, "error": "what went wrong"}

A bad line (not UTF-8, not JSON, nested too deeply, longer than MAX_LINE_BYTES, fields of the
wrong type) gets one error line and the bridge goes on. At the end of input it answers what is
still queued, then exits.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import IO, Any

from scribe.engine.runtime.options import max_tokens_in_bounds
from scribe.plugins.servers.completion_service import CompletionRequest, CompletionService
from scribe.plugins.servers.request_scheduler import Job

log = logging.getLogger("scribe.plugins.jsonl")

MAX_TOKENS_LIMIT = 512  # this door's limit on a request's "max_tokens"
MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line is skipped without being held in memory
_SKIP_CHUNK = 1024 * 1024


class RequestError(ValueError):
    """A line that cannot be served; the message goes back to the client."""


class JsonlBridge:
    def __init__(self, service: CompletionService, out: IO[str]) -> None:
        self.service = service
        self._out = out
        self._write_lock = threading.Lock()
        self._jobs: dict[str, tuple[Any, Job]] = {}  # json id -> (id, job) still outstanding
        self._jobs_lock = threading.Lock()
        self._cancelled: set[str] = set()
        # document -> number of its latest request, to tell a superseded request from one the
        # queue's bound pushed out
        self._latest: dict[str, int] = {}
        self._submitted = 0
        self.closed = False

    def serve(self, lines: IO[bytes]) -> None:
        self.service.start()
        try:
            for number, raw in enumerate(_read_lines(lines, MAX_LINE_BYTES), start=1):
                if self.closed:
                    break
                self.handle_line(raw, number)
            self._wait_outstanding()
        finally:
            self.service.close()

    def handle_line(self, raw: bytes | None, number: int) -> None:
        """Answer one line; `None` stands for a line over MAX_LINE_BYTES."""
        if raw is not None and not raw.strip():
            return
        msg_id: Any = None
        try:
            message = _decode(raw, number)
            if "cancel" in message:
                self._cancel(message["cancel"])
                return
            msg_id = message.get("id")
            self._submit(msg_id, _parse_request(message, self.service.max_tokens))
        except RequestError as err:
            self._reply({"id": msg_id if _valid_id(msg_id) else None, "error": str(err)})
        except Exception as err:  # a bug of ours: one error line, never a traceback
            log.exception("line %d could not be served", number)
            error = f"line {number}: internal error ({type(err).__name__}: {err})"
            self._reply({"id": msg_id if _valid_id(msg_id) else None, "error": error})

    def _submit(self, msg_id: Any, request: CompletionRequest) -> None:
        document = request.document
        with self._jobs_lock:  # before submit: it resolves the request this one supersedes
            self._submitted += 1
            number = self._latest[document] = self._submitted
        job = self.service.submit(request)
        key = json.dumps(msg_id)
        with self._jobs_lock:
            self._jobs[key] = (msg_id, job)
        job.future.add_done_callback(
            lambda future: self._finished(key, msg_id, job, future, (document, number))
        )

    def _finished(
        self, key: str, msg_id: Any, job: Job, future: Future[Any], request: tuple[str, int]
    ) -> None:
        document, number = request
        with self._jobs_lock:
            if self._jobs.get(key, (None, None))[1] is job:
                del self._jobs[key]
            cancelled = key in self._cancelled
            self._cancelled.discard(key)
            superseded = self._latest.get(document, number) != number
            if not superseded:
                del self._latest[document]
        error = future.exception()
        if error is not None:
            self._reply({"id": msg_id, "error": str(error) or type(error).__name__})
        elif future.result() is None:
            if cancelled:
                reason = "cancelled"
            elif superseded:
                reason = "cancelled: a newer request for this document"
            else:
                reason = "dropped: too many requests were waiting; send fewer at once"
            self._reply({"id": msg_id, "error": reason})
        else:
            self._reply({"id": msg_id, "text": future.result().text})

    def _cancel(self, msg_id: Any) -> None:
        if not _valid_id(msg_id):
            raise RequestError('"cancel" must be the id of a request (a string or an integer)')
        key = json.dumps(msg_id)
        with self._jobs_lock:
            entry = self._jobs.get(key)
            if entry is not None:
                self._cancelled.add(key)
        if entry is None:
            error = "nothing to cancel: no request in flight has this id"
            self._reply({"id": msg_id, "error": error})
            return
        self.service.cancel(entry[1])

    def _wait_outstanding(self) -> None:
        with self._jobs_lock:
            jobs = [job for _, job in self._jobs.values()]
        for job in jobs:
            try:
                job.future.result()
            except Exception:  # already reported to the client
                pass

    def _reply(self, message: dict[str, Any]) -> None:
        line = _encode(message) + "\n"
        with self._write_lock:
            if self.closed:
                return
            try:
                self._out.write(line)
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError):
                log.info("the client closed its end; stopping")
                self.closed = True


def _read_lines(stream: IO[bytes], limit: int) -> Iterator[bytes | None]:
    """The stream's lines, with None for one longer than `limit` (its bytes are read and
    dropped piece by piece, so a client cannot make the bridge hold a huge line)."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(_SKIP_CHUNK)
        yield None


def _decode(raw: bytes | None, number: int) -> dict[str, Any]:
    if raw is None:
        raise RequestError(f"line {number}: longer than {MAX_LINE_BYTES} bytes; skipped")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(
            f"line {number}: not valid UTF-8 (byte {raw[err.start]:#04x} at offset {err.start})"
        ) from None
    try:
        message = json.loads(text)
    except ValueError as err:
        raise RequestError(
            f"line {number}: not valid JSON ({err}); send one JSON object per line"
        ) from None
    except RecursionError:  # json.loads recurses once per nesting level
        raise RequestError(f"line {number}: JSON nested too deeply") from None
    if not isinstance(message, dict):
        raise RequestError(f"line {number}: expected a JSON object, got {_kind(message)}")
    return message


def _encode(message: dict[str, Any]) -> str:
    line = json.dumps(message, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON allows "\ud800"): send it escaped
        line = json.dumps(message)
    # Only "\n" ends a line; escaped, the other line breaks (which json.dumps writes only
    # inside strings) cannot end one for a client that splits lines the way str.splitlines does.
    return line.translate(_LINE_BREAKS)


_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\u0085\u2028\u2029"}


def _parse_request(message: dict[str, Any], default_max_tokens: int) -> CompletionRequest:
    if not _valid_id(message.get("id")):
        raise RequestError('each request needs an "id" (a string or an integer)')
    prefix = message.get("prefix")
    if not isinstance(prefix, str):
        raise RequestError('"prefix" must be a string: the text before the cursor')
    suffix = message.get("suffix", "")
    if not isinstance(suffix, str):
        raise RequestError('"suffix" must be a string: the text after the cursor')
    for name in ("prefix", "suffix", "language", "document"):
        _check_text(name, message.get(name))
    max_tokens = message.get("max_tokens", default_max_tokens)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise RequestError(f'"max_tokens" must be an integer from 1 to {MAX_TOKENS_LIMIT}')
    if not max_tokens_in_bounds(max_tokens, MAX_TOKENS_LIMIT):
        raise RequestError(f'"max_tokens" must be from 1 to {MAX_TOKENS_LIMIT}, got {max_tokens}')
    language = message.get("language")
    # Without a "document", a request is its own document: independent requests all get answers.
    document = message.get("document", f"request {json.dumps(message['id'])}")
    if language is not None and not isinstance(language, str):
        raise RequestError('"language" must be a string such as "markdown" or "python"')
    if not isinstance(document, str):
        raise RequestError('"document" must be a string')
    return CompletionRequest(
        document=document,
        text=prefix,
        cursor=len(prefix),
        suffix=suffix,  # the service decides how much of it a prompt uses
        language=language,
        max_tokens=max_tokens,
    )


def _check_text(name: str, value: Any) -> None:
    """Refuse a string holding a lone surrogate (JSON allows "\\ud800"; no text can hold it)."""
    if not isinstance(value, str):
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RequestError(
            f'"{name}" holds a lone surrogate (U+{ord(value[err.start]):04X} at offset '
            f"{err.start}), which is not text; send valid Unicode (pair surrogates or use UTF-8)"
        ) from None


def _valid_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")

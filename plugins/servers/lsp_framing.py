"""Reading LSP frames (`Content-Length` header, blank line, JSON body) off a byte stream, so that
no framing mistake ends or silences the server: after a lying or missing length the reader finds
the next header, and a body over `MAX_MESSAGE_BYTES` is skipped unread, never allocated."""

from __future__ import annotations

import logging
import re
from typing import BinaryIO

log = logging.getLogger("scribe.plugins.lsp")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a bigger body is skipped unread, never allocated
MAX_HEADER_BYTES = 8 * 1024  # a header block longer than this is garbage
READ_CHUNK = 64 * 1024

# A Content-Length line anywhere, not only at a line start: after a wrong length the next header
# is glued to the rest of a body. A JSON body cannot contain this by accident: "content-length"
# is not a JSON token, and a JSON string cannot hold a raw line break.
_CONTENT_LENGTH = re.compile(rb"content-length:[ \t]{0,8}(\d{1,19})[ \t]{0,8}\r?\n", re.IGNORECASE)
_TAIL = 64  # longer than any _CONTENT_LENGTH match: what is kept of skipped input
_LETTER_C = re.compile(rb"[cC]")
_HEADER_VALUE_PART = re.compile(rb"[ \t]{0,8}\d{0,19}[ \t]{0,8}\r?")
_HEADER_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*")


class FrameReader:
    """LSP's Content-Length framing, made to survive a client that gets it wrong.

    pygls trusts the header: a length too large swallows the next messages and waits forever,
    one too small or a missing one loses the framing for good, and a huge one is allocated.
    Here input that is not a framed message is skipped up to the next Content-Length header.
    """

    def __init__(self, stream: BinaryIO, max_message: int = MAX_MESSAGE_BYTES) -> None:
        # read1 returns what has arrived instead of waiting for a whole chunk.
        self._read = getattr(stream, "read1", stream.read)
        self._max_message = max_message
        self._buf = bytearray()
        self._skipped = 0  # bytes dropped since the last good header
        self._explained = False  # a log line already said why they are dropped

    def read_message(self) -> bytes | None:
        """The next message body (not necessarily JSON), or None at the end of input."""
        while True:
            length = self._next_header()
            if length is None:
                return None
            if length <= self._max_message:
                return self._read_body(length)
            log.warning(
                "refusing a %d-byte message (the limit is %d); skipping to the next header",
                length,
                self._max_message,
            )
            self._explained = True

    def _next_header(self) -> int | None:
        """Skip to the next complete header block, consume it, and return its Content-Length."""
        while True:
            match = _CONTENT_LENGTH.search(self._buf)
            if match is None:
                self._drop(len(self._buf) - _TAIL)  # the tail may be a header's first half
            else:
                length, header_len = int(match.group(1)), match.end() - match.start()
                self._drop(match.start())  # (the match's offsets are stale from here)
                end = _end_of_headers(self._buf, header_len)
                if end > 0:
                    self._log_skipped()
                    del self._buf[:end]
                    return length
                if end < 0:
                    log.warning("a Content-Length header is followed by garbage; skipping it")
                    self._explained = True
                    self._drop(header_len)
                    continue
            if not self._fill():
                self._log_skipped()
                return None

    def _read_body(self, length: int) -> bytes | None:
        scanned = 0
        while True:
            # A header inside the body means the length was too large: the body ends there.
            match = _CONTENT_LENGTH.search(self._buf, max(0, scanned - _TAIL))
            if match is not None and match.start() < length:
                log.warning(
                    "Content-Length said %d bytes, but the next header came after %d",
                    length,
                    match.start(),
                )
                return self._take(match.start())
            if len(self._buf) >= length:
                if self._header_may_straddle(length) and self._fill():
                    continue  # is a header starting just before `length`? more bytes will say
                return self._take(length)
            scanned = len(self._buf)
            if not self._fill():
                return None

    def _header_may_straddle(self, length: int) -> bool:
        """Whether the buffer could end inside a Content-Length line that starts before
        `length` (a JSON body never ends with a piece of one)."""
        if len(self._buf) >= length + _TAIL:
            return False  # any such line would be complete, and found by the search
        start = max(0, length - _TAIL)
        return any(
            _may_start_header(bytes(self._buf[match.start() :]))
            for match in _LETTER_C.finditer(self._buf, start, length)
        )

    def _fill(self) -> bool:
        chunk = self._read(READ_CHUNK)
        if not chunk:
            return False
        self._buf.extend(chunk)
        return True

    def _take(self, n: int) -> bytes:
        body = bytes(self._buf[:n])
        del self._buf[:n]
        return body

    def _drop(self, n: int) -> None:
        if n <= 0:
            return
        if not _only_headers(self._buf[:n]):  # other headers before Content-Length are fine
            self._skipped += n
        del self._buf[:n]

    def _log_skipped(self) -> None:
        if self._skipped and not self._explained:
            log.warning("skipped %d bytes of input that were not a framed message", self._skipped)
        self._skipped, self._explained = 0, False


def _end_of_headers(buf: bytearray, start: int) -> int:
    """Where the header block whose first line ends at `start` ends: 0 while it is incomplete,
    -1 if a line in it is not a header."""
    pos = start
    while True:
        newline = buf.find(b"\n", pos)
        if newline < 0:
            return -1 if len(buf) - start > MAX_HEADER_BYTES else 0
        line = bytes(buf[pos:newline]).rstrip(b"\r")
        if not line:
            return newline + 1
        if newline - start > MAX_HEADER_BYTES or not _HEADER_FIELD.fullmatch(line):
            return -1
        pos = newline + 1


def _may_start_header(tail: bytes) -> bool:
    """Whether `tail` is the first part of a Content-Length line (input still to come)."""
    name = b"content-length:"
    if not name.startswith(tail[: len(name)].lower()):
        return False
    return _HEADER_VALUE_PART.fullmatch(tail[len(name) :]) is not None


def _only_headers(data: bytearray) -> bool:
    lines = bytes(data).split(b"\n")
    return all(not line.strip() or _HEADER_FIELD.fullmatch(line.rstrip(b"\r")) for line in lines)

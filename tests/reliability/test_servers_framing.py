"""`scribe lsp`'s FrameReader in-process: after any framing mistake the next good message comes
through, whether the input arrives at once or one byte per read."""

from __future__ import annotations

import io
import json

import pytest

from scribe.plugins.servers.lsp_framing import MAX_MESSAGE_BYTES, READ_CHUNK, FrameReader

GOOD = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "scribe/status"}).encode()


def frame(body: bytes, length: int | None = None) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length) + body


class Trickle(io.RawIOBase):
    """A stream that hands out `step` bytes per read and records the sizes asked for."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self.asked = data, step, []

    def read1(self, size: int = -1) -> bytes:
        self.asked.append(size)
        piece, self._data = self._data[: self._step], self._data[self._step :]
        return piece


def messages(data: bytes, step: int) -> list[bytes]:
    reader = FrameReader(Trickle(data, step))  # type: ignore[arg-type]
    out = []
    while (body := reader.read_message()) is not None:
        out.append(body)
    return out


BAD_FRAMES = {
    "garbage-length": b"Content-Length: lots\r\n\r\n{}",
    "no-content-length": b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + GOOD,
    "too-small": frame(GOOD, length=10),
    "too-large": frame(GOOD, length=len(GOOD) + 200),
    "too-large-by-a-little": frame(GOOD, length=len(GOOD) + 3),
    "absurd": frame(GOOD, length=999_999_999_999),
    "over-the-cap": frame(b"x" * 100, length=MAX_MESSAGE_BYTES + 1),
    "garbage-header-line": b"Content-Length: 5\r\nnot a header\r\n\r\nhello",
    "stray-bytes": b"\x00\xff\r\n\r\n garbage ",
}


@pytest.mark.parametrize("step", [1, 7, READ_CHUNK], ids=["bytewise", "small-reads", "at-once"])
@pytest.mark.parametrize("bad", list(BAD_FRAMES.values()), ids=list(BAD_FRAMES))
def test_the_next_good_message_survives(bad: bytes, step: int) -> None:
    out = messages(bad + frame(GOOD) + frame(GOOD), step)
    assert out[-2:] == [GOOD, GOOD]
    assert all(GOOD not in body or body == GOOD for body in out)  # nothing glued together


@pytest.mark.parametrize("step", [1, READ_CHUNK])
def test_good_frames_pass_unchanged(step: int) -> None:
    other = b'{"text": "Content-Length: 5\\r\\n in a string is not a header"}'
    data = b"Content-Type: x\r\n" + frame(GOOD) + frame(other) + b"content-length:3\n\n[1]"
    assert messages(data, step) == [GOOD, other, b"[1]"]


def test_a_huge_length_is_never_read_at_once() -> None:
    stream = Trickle(frame(GOOD, length=999_999_999_999) + frame(GOOD), READ_CHUNK)
    reader = FrameReader(stream)  # type: ignore[arg-type]
    assert reader.read_message() == GOOD
    assert max(stream.asked) <= READ_CHUNK


def test_the_end_of_input_mid_message_ends_cleanly() -> None:
    assert messages(frame(GOOD) + frame(GOOD)[:-5], 3) == [GOOD]

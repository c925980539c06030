"""Checking text the user hands scribe (stdin, /read, training files) before it reaches a model."""

from __future__ import annotations

import stat
from collections import deque
from pathlib import Path
from typing import BinaryIO

from scribe.engine.errors import InputError


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text from bytes, or an InputError naming `source`, the problem and the fix."""
    if not data.strip():
        raise InputError(f"{source} is empty; give it some text, e.g. scribe complete < draft.md")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # what Windows tools often write
        raise InputError(
            f"{source} is UTF-16, not UTF-8; convert it first, e.g. iconv -f UTF-16 -t UTF-8"
        )
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(
            f"{source} looks binary (NUL byte at offset {nul}); give it a UTF-8 text file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{source} is not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); "
            "convert it first, e.g. iconv -f LATIN1 -t UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


# Far beyond any model's context; a larger "text" file is a mistake that would fill memory.
MAX_TEXT_FILE_BYTES = 16 * 1024 * 1024


def read_text_file(
    path: Path, max_bytes: int | None = MAX_TEXT_FILE_BYTES, empty: str | None = None
) -> str:
    """A UTF-8 text file the user named, or one InputError naming it: a folder, a device or
    pipe, a file over `max_bytes` (None: no limit, for training data), or one that is empty
    (`empty` is then the message's advice) or not UTF-8 text."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a folder; give a text file")
        # A pipe would block the open until someone writes; /dev/zero never ends.
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (a device or pipe); give a text file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputError(
                f"{path}: {info.st_size} bytes is more than the {max_bytes} a text "
                "file may have; give a part of it"
            )
        with path.open("rb") as file:
            # One byte past the limit: a file that grew since stat is caught below.
            data = file.read() if max_bytes is None else file.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as err:  # a symlink loop, a name too long, an I/O error
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"{path}: grew past {max_bytes} bytes while being read")
    if empty is not None and not data.strip():
        raise InputError(f"{path}: empty file; {empty}")
    return decode_text(data, str(path))


_CHUNK = 1024 * 1024


def read_ends(stream: BinaryIO, keep: int, mark: bytes, source: str = "stdin") -> bytes:
    """All of `stream`, or when it is longer than 2 * `keep` bytes its first and last `keep`
    bytes joined by `mark`: a prompt only ever uses the ends, so a huge input is read in
    chunks and never held whole. Cuts fall between UTF-8 characters. Running out of memory
    all the same is one InputError naming `source`."""
    try:
        head = stream.read(2 * keep)
        if len(head) < 2 * keep:
            return head
        tail: deque[bytes] = deque()
        held = 0
        while chunk := stream.read(_CHUNK):
            tail.append(chunk)
            held += len(chunk)
            while held - len(tail[0]) >= keep:
                held -= len(tail.popleft())
        rest = b"".join(tail)
    except MemoryError:
        raise InputError(
            f"{source} is too large for the memory scribe may use; give a shorter part of it"
        ) from None
    if len(head) + len(rest) <= 2 * keep:
        return head + rest
    ends = (head + rest)[:keep], (head + rest)[-keep:]
    first = _whole_chars(ends[0], at_end=True)
    last = _whole_chars(ends[1], at_end=False)
    return first + mark + last


def _whole_chars(data: bytes, at_end: bool) -> bytes:
    """`data` without the piece of a UTF-8 character cut at its end (or start)."""
    if not at_end:
        start = 0
        while start < min(4, len(data)) and 0x80 <= data[start] < 0xC0:
            start += 1
        return data[start:]
    end = len(data)
    for back in range(1, min(4, len(data)) + 1):
        byte = data[end - back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte of the last character: is it complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[: end - back]
    return data

"""Checking text the user hands scribe (stdin, /read, training files) before it reaches a model."""

from __future__ import annotations

from pathlib import Path

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


def read_text_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; give a text file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    return decode_text(data, str(path))

"""Reading rows another tool may have damaged: each field as scribe's type, or a default."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def decode_text(data: bytes) -> str:
    """TEXT that is not valid UTF-8 (written by another tool) is read with U+FFFD, not an error."""
    return data.decode("utf-8", errors="replace")


class RowFields:
    """One row's fields read as the types scribe writes. A malformed field (NULL, another type,
    broken JSON: another tool edited the file) is read as a default and described in `problems`,
    so one bad row is reported instead of crashing every command that reads it."""

    def __init__(self, row: sqlite3.Row, what: str) -> None:
        self.row, self.what = row, what
        self.problems: list[str] = []

    def _bad(self, key: str, why: str) -> None:
        self.problems.append(f"{self.what} has {why} {key}")

    def text(self, key: str, default: str = "") -> str:
        value = self.row[key]
        if isinstance(value, str):
            return value
        if value is None:
            self._bad(key, "NULL")
            return default
        self._bad(key, f"non-text ({type(value).__name__})")
        if isinstance(value, bytes):
            return decode_text(value)
        return str(value)

    def optional_text(self, key: str) -> str | None:
        return None if self.row[key] is None else self.text(key)

    def number(self, key: str) -> float:
        value = self.row[key]
        if isinstance(value, (int, float)):
            return float(value)
        self._bad(key, "NULL" if value is None else "non-numeric")
        return 0.0

    def integer(self, key: str) -> int | None:
        value = self.row[key]
        if value is None or isinstance(value, int):
            return value
        self._bad(key, "non-integer")
        return None

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.row[key]
        if value is None or value == "":
            return {}
        try:
            parsed = json.loads(value)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        self._bad(key, "malformed (not a JSON object)")
        return {}

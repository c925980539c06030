"""Reading the user's TOML files (config.toml, templates) into one error line each."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scribe.engine.errors import ScribeError


def read_toml(path: Path, error: type[ScribeError], what: str) -> dict[str, Any]:
    """The file's table, or `error` naming the file, what it is ("config", "template") and
    the fix: malformed TOML (with its line), not UTF-8, or unreadable."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: malformed {what} ({err}); fix or delete the file") from None
    except UnicodeDecodeError:
        raise error(f"{path}: malformed {what} (not UTF-8 text); save it as UTF-8") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror})") from None


def reject_unknown(
    path: Path, data: dict[str, Any], known: Iterable[str], error: type[ScribeError], hint: str
) -> None:
    """`error` naming the first key of `data` that is not in `known`; `hint` completes the
    message ("config.toml knows: ...")."""
    unknown = [key for key in data if key not in set(known)]
    if unknown:
        raise error(f"{path}: unknown {hint.format(key=unknown[0])}")

"""Where scribe keeps its files: platformdirs, or everything under $SCRIBE_HOME when it is set."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scribe.engine.errors import InputError

APP = "scribe"


def user_path(text: str, what: str) -> Path:
    """A path the user typed, with `~` expanded. pathlib raises RuntimeError for an unknown
    `~user` and ValueError (at first use) for a NUL byte; both become one InputError naming
    `what` (the flag, command or variable it came from)."""
    if "\x00" in text:
        raise InputError(f"{what}: a path cannot contain a NUL byte; give another path")
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split(os.sep, 1)[0]
        raise InputError(
            f"{what} {text}: there is no user '{user}' to expand ~{user}; write the full path"
        ) from None


def _home() -> Path | None:
    value = os.environ.get("SCRIBE_HOME")
    return user_path(value, "SCRIBE_HOME") if value else None


def _folder(kind: str) -> Path:
    """$SCRIBE_HOME/KIND, else platformdirs' user folder of that kind for scribe."""
    home = _home()
    if home:
        return home / kind
    import platformdirs

    return getattr(platformdirs, f"user_{kind}_path")(APP)


def config_dir() -> Path:
    return _folder("config")


def data_dir() -> Path:
    return _folder("data")


def cache_dir() -> Path:
    return _folder("cache")


def models_dir() -> Path:
    return data_dir() / "models"


def templates_dir() -> Path:
    return config_dir() / "templates"


def config_file() -> Path:
    return config_dir() / "config.toml"


# -- privacy: conversations, prompts and models are the user's alone -----------------------------
PRIVATE_UMASK = 0o077  # files 0600, folders 0700


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created inside this block are readable by their owner only."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def tighten(path: Path) -> None:
    """Drop group and other permissions from an existing file or folder. Best effort: one that
    belongs to someone else (chmod refused) is left as it is."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & PRIVATE_UMASK:
            path.chmod(mode & ~PRIVATE_UMASK)
    except OSError:
        pass


def make_private_dir(folder: Path) -> Path:
    """Create `folder` (and missing parents) as 0700; an existing one loses group/other access."""
    with private_umask():
        folder.mkdir(parents=True, exist_ok=True)
    tighten(folder)
    return folder

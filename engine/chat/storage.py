"""The database file on disk: its private folder and file modes, and failures as StorageError."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from scribe.engine import paths
from scribe.engine.errors import ScribeError

SIDECARS = ("-wal", "-shm")  # SQLite's WAL files next to the database
LOW_SPACE = 1 << 20  # bytes free under which a failed write is taken for a full disk


class StorageError(ScribeError):
    """The conversation database cannot be opened, read or written."""


class ForeignDatabaseError(StorageError):
    """conversations.db is an SQLite database of another program; scribe leaves it untouched."""


def storage_error(path: Path, err: Exception) -> StorageError:
    """One line naming the file, what is wrong and what to do."""
    text = str(err)
    low = text.lower()
    if _disk_full(path, err):
        return StorageError(
            f"disk full: cannot save to {path}; free some space on {path.parent} and scribe "
            "saves it then (nothing saved was lost)"
        )
    if isinstance(err, PermissionError) or "readonly" in low or "read-only" in low:
        return StorageError(
            f"cannot write {path}: the data dir {path.parent} is read-only ({text}); make it "
            "writable, or point SCRIBE_HOME at a writable folder"
        )
    if "locked" in low or "busy" in low:
        return StorageError(
            f"{path} is locked by another scribe (or another program) holding a write; "
            "finish or close that one and try again (nothing was overwritten)"
        )
    if "not a database" in low or "malformed" in low or "encrypted" in low:
        return StorageError(
            f"{path} is not a readable scribe database ({text}); scribe left it untouched: "
            f"move it aside (mv {path} {path}.bak) and scribe starts a new one"
        )
    if "unable to open" in low:
        if not os.access(path.parent, os.W_OK):
            return storage_error(path, PermissionError(text))
        return StorageError(f"cannot open {path} ({text}); check the folder and its permissions")
    return StorageError(f"{path}: database error ({text})")


def _disk_full(path: Path, err: Exception) -> bool:
    """SQLITE_FULL, ENOSPC, or a "disk I/O error" on a file system with no space left: SQLite
    reports a failed write of its -wal/-shm files (or their sync) as I/O, not as full."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if getattr(err, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(err):
        return True
    if isinstance(err, sqlite3.Error) and "disk i/o error" in str(err).lower():
        try:
            stat = os.statvfs(path.parent)
        except OSError:
            return False
        return stat.f_bavail * stat.f_frsize < LOW_SPACE
    return False


def make_folder(path: Path) -> None:
    """The database's folder; the data dir itself is made (or tightened to) 0700. Another folder
    given explicitly is only created private, never chmod-ed: it may be shared on purpose."""
    folder = path.parent
    try:
        if folder == paths.data_dir():
            paths.make_private_dir(folder)
        else:
            with paths.private_umask():
                folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise storage_error(path, PermissionError(str(err))) from None
    if not os.access(folder, os.W_OK):
        raise storage_error(path, PermissionError("no write permission"))


def tighten_files(path: Path) -> None:
    """The database and its sidecars made 0600: ones made before scribe kept its files private."""
    for file in (path, *(Path(f"{path}{end}") for end in SIDECARS)):
        if file.exists():
            paths.tighten(file)


def writable(path: Path) -> bool:
    """The database and its folder (where SQLite keeps its -wal and -shm files) can be written."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)

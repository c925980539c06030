"""The database file on disk: its private folder and file modes, and failures as StorageError."""

from __future__ import annotations

import os
from pathlib import Path

from scribe.engine import paths
from scribe.engine.errors import ScribeError

SIDECARS = ("-wal", "-shm")  # SQLite's WAL files next to the database


class StorageError(ScribeError):
    """The conversation database cannot be opened, read or written."""


class ForeignDatabaseError(StorageError):
    """conversations.db is an SQLite database of another program; scribe leaves it untouched."""


def storage_error(path: Path, err: Exception) -> StorageError:
    """One line naming the file, what is wrong and what to do."""
    text = str(err)
    low = text.lower()
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

"""Writing a file whole: into a temporary name beside the target, flushed to disk, then renamed
over it, so a reader (or a crash) never sees half a file. What scribe writes is its user's
alone: the temporary name lives in a 0700 folder while it is written, and lands 0600 (folders
0700), as do the folders made on the way."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE, DIR_MODE = 0o600, 0o700


@contextmanager
def atomic_path(target: Path, replace: bool = True) -> Iterator[Path]:
    """A temporary path beside `target` for a writer that wants a name (safetensors'
    save_file, onnx.save_model, a GGUF writer, a checkpoint folder); on a clean exit it is synced,
    made owner-only and renamed over `target` (an empty folder, or a file), on an error removed.
    `replace=False`: a file that exists at `target` by then is kept and FileExistsError raised."""
    make_dirs(target.parent)
    # A private folder beside the target (same file system, so the rename is atomic): no other
    # user can open the file while it is written, whatever mode its writer gives it.
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name[:100]}.part-", dir=target.parent))
    part = scratch / target.name
    try:
        yield part
        _private(part)
        _fsync(part)
        if replace:
            os.replace(part, target)
        else:
            _move_new(part, target)
        _fsync(target.parent)  # the rename itself survives a crash
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def atomic_write(target: Path, data: bytes | str, replace: bool = True) -> None:
    """Write `data` (text as UTF-8) to `target` whole."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(target, replace) as part:
        part.write_bytes(raw)


def make_dirs(folder: Path) -> None:
    """Make `folder` and its missing parents 0700; existing ones are left as they are."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by another writer
            pass


def _move_new(part: Path, target: Path) -> None:
    """Rename `part` to `target` only when no file is there: a hard link fails on an existing
    name where a rename would replace it."""
    if part.is_dir():
        if target.exists():
            raise FileExistsError(17, "File exists", str(target))
        os.replace(part, target)
        return
    try:
        os.link(part, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: look, then rename
        if target.exists():
            raise FileExistsError(17, "File exists", str(target)) from None
        os.replace(part, target)


def _private(path: Path) -> None:
    """Owner-only: files 0600, folders 0700, all the way down."""
    if path.is_symlink():
        return
    if path.is_dir():
        path.chmod(DIR_MODE)
        for child in path.iterdir():
            _private(child)
    else:
        path.chmod(FILE_MODE)


def _fsync(path: Path) -> None:
    """Flush a file's bytes (a folder's: every file in it, then its entries) before the rename
    makes it visible. Where a file system cannot sync a folder, that is not an error."""
    if path.is_dir():
        for child in path.iterdir():
            _fsync(child)
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    else:
        flags = os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)

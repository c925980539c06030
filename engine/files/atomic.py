"""Writing a file whole: into a temporary name beside the target, flushed to disk, then renamed
over it, so a reader (or a crash) never sees half a file."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` for a writer that wants a name (safetensors'
    save_file, onnx.save_model, a GGUF writer, a checkpoint folder); on a clean exit it is synced
    and renamed over `target` (an empty folder, or a file), on an error removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        yield part
        _fsync(part)
        os.replace(part, target)
        _fsync(target.parent)  # the rename itself survives a crash
    finally:
        if part.is_dir():
            shutil.rmtree(part, ignore_errors=True)
        else:
            try:
                part.unlink(missing_ok=True)
            except OSError:  # its folder is gone or is a file: nothing was left there
                pass


def atomic_write(target: Path, data: bytes | str) -> None:
    """Write `data` (text as UTF-8) to `target` whole."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(target) as part:
        part.write_bytes(raw)


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

"""Writing a file whole: into a temporary name beside the target, flushed to disk, then renamed
over it, so a reader (or a crash) never sees half a file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` for a writer that wants a file name (safetensors'
    save_file, onnx.save_model, a GGUF writer); on a clean exit it is synced and renamed over
    `target`, on an error removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.part-{os.getpid()}")
    try:
        yield part
        _fsync(part)
        os.replace(part, target)
    finally:
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
    """Flush the file's bytes before the rename makes it visible."""
    with path.open("rb") as handle:
        os.fsync(handle.fileno())

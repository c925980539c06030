"""Files derived from others (quantized weights, ONNX graphs, merged adapters): a fingerprint of
the sources and the deriving code's format version says whether a derived file is still theirs.
A stale or damaged derived file is never an error: it is built again."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def fingerprint(sources: Iterable[Path], version: str) -> str:
    """Changes when any source file (its resolved path, size or modification time) or the
    format `version` changes."""
    digest = hashlib.sha256(version.encode())
    for file in sources:
        stat = file.stat()
        digest.update(f"|{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def short_key(text: str) -> str:
    """A short, stable folder name for `text` (a path, a fingerprint)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]

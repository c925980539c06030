"""Files derived from others (quantized weights, ONNX graphs, merged adapters): a fingerprint of
the sources and the deriving code's format version says whether a derived file is still theirs.
A stale or damaged derived file is never an error: it is built again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from scribe.engine.files.atomic import atomic_write


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


def stamp_matches(stamp: Path, expected: str, outputs: Iterable[Path] = ()) -> bool:
    """A derived file's stamp (a small JSON file beside it) names `expected` and every output
    it covers exists: else the outputs are stale or damaged, and are built again."""
    try:
        meta = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    built = isinstance(meta, dict) and meta.get("built_from") == expected
    return built and all(file.exists() for file in outputs)


def write_stamp(stamp: Path, built_from: str) -> None:
    """Written last, once the outputs are whole: a build cut short leaves no stamp."""
    atomic_write(stamp, json.dumps({"built_from": built_from}))

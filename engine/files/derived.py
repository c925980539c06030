"""Files derived from others (quantized weights, ONNX graphs, merged adapters): a fingerprint of
the sources and the deriving code's format version says whether a derived file is still theirs.
A stale or damaged derived file is never an error: it is built again.

A stamp is taken from the sources as they were BEFORE the build (a source changed meanwhile
makes the build stale at once), and records each output's size and modification time, so an
output changed or cut short since is found when it is opened."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from scribe.engine.files.atomic import atomic_write

CURRENT, MISSING, STALE, DAMAGED = "current", "missing", "stale", "damaged"


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


def stamp_state(stamp: Path, expected: str, outputs: Iterable[Path] = ()) -> str:
    """CURRENT: the stamp names `expected` and every output it covers is as it was written;
    MISSING: never built (or the build was cut short); STALE: built from other sources;
    DAMAGED: an output or the stamp is gone, cut short or changed since."""
    try:
        meta = json.loads(stamp.read_text(encoding="utf-8"))
    except OSError:  # none, or none can be read there (its folder is a file, say)
        return MISSING
    except ValueError:
        return DAMAGED
    if not isinstance(meta, dict):
        return DAMAGED
    if meta.get("built_from") != expected:
        return STALE
    recorded = meta.get("outputs")
    recorded = recorded if isinstance(recorded, dict) else {}
    for file in outputs:
        try:
            now = file.stat()
        except OSError:
            return DAMAGED
        was = recorded.get(file.name)
        if was is not None and was != [now.st_size, now.st_mtime_ns]:
            return DAMAGED
    return CURRENT


def stamp_matches(stamp: Path, expected: str, outputs: Iterable[Path] = ()) -> bool:
    """Whether the outputs can be used as they are (stamp_state is CURRENT)."""
    return stamp_state(stamp, expected, outputs) == CURRENT


def write_stamp(stamp: Path, built_from: str, outputs: Iterable[Path] = ()) -> None:
    """Written last, once the outputs are whole and in place: a build cut short leaves no
    stamp. `built_from` is the fingerprint read before the build started."""
    sizes = {}
    for file in outputs:
        now = file.stat()
        sizes[file.name] = [now.st_size, now.st_mtime_ns]
    atomic_write(stamp, json.dumps({"built_from": built_from, "outputs": sizes}))

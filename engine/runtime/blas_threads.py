"""The thread count of numpy's BLAS (OpenBLAS in numpy's wheels), set while running.

OpenBLAS reads its thread count from the environment once, when numpy loads it; after that only
its own `openblas_set_num_threads` changes it (what threadpoolctl calls). With both cores busy
elsewhere, two OpenBLAS threads made the numpy backend's prefill seven times slower than one, so
the decode loop paces this pool as it paces torch's (threads.py).
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

# The setter and getter under the names numpy's bundled OpenBLAS (scipy-openblas, 64-bit ints)
# and a system OpenBLAS export.
SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


class BlasThreads:
    """numpy's OpenBLAS thread pool, through OpenBLAS's own setter."""

    def __init__(self, library: ctypes.CDLL, setter: str, getter: str) -> None:
        self._set = getattr(library, setter)
        self._set.argtypes = [ctypes.c_int]
        self._set.restype = None
        self._get = getattr(library, getter)
        self._get.restype = ctypes.c_int

    def get(self) -> int:
        return int(self._get())

    def set(self, count: int) -> None:
        self._set(count)


def blas_pool() -> BlasThreads | None:
    """numpy's OpenBLAS pool, or None when numpy's BLAS is another (its own threading stays)."""
    for library in _loaded_openblas():
        for setter, getter in SYMBOLS:
            if hasattr(library, setter) and hasattr(library, getter):
                return BlasThreads(library, setter, getter)
    return None


def _loaded_openblas() -> list[ctypes.CDLL]:
    """The OpenBLAS libraries numpy ships beside itself (already loaded: opening them again
    returns the same library)."""
    import numpy

    root = Path(numpy.__file__).resolve().parent
    found = []
    for folder in (root.parent / "numpy.libs", root / ".dylibs"):
        for path in sorted(folder.glob("*openblas*")) if folder.is_dir() else ():
            try:
                found.append(ctypes.CDLL(str(path)))
            except OSError:
                continue
    if sys.platform.startswith("linux"):
        found += _mapped_openblas(found)
    return found


def _mapped_openblas(known: list[ctypes.CDLL]) -> list[ctypes.CDLL]:
    """OpenBLAS libraries mapped into this process from elsewhere (a system numpy)."""
    names = {lib._name for lib in known}
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()}
    out = []
    for path in sorted(paths - names):
        try:
            out.append(ctypes.CDLL(path))
        except OSError:
            continue
    return out

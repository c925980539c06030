"""The thread count of numpy's BLAS (OpenBLAS in numpy's wheels), set while running.

OpenBLAS reads its thread count from the environment once, when numpy loads it; after that only
its own `openblas_set_num_threads` changes it (what threadpoolctl calls). The numpy backend runs
on one thread: with the cores busy elsewhere, two OpenBLAS threads made the embedded model's
first forward 360 ms instead of 10 and a 100-token prefill 1 s instead of 32 ms (they spin
waiting for each other), while one thread already decodes it faster than torch does.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# The setter under the names numpy's bundled OpenBLAS (scipy-openblas, 64-bit ints) and a
# system OpenBLAS export.
SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def set_threads(count: int) -> bool:
    """Run numpy's OpenBLAS on `count` threads, unless OPENBLAS_NUM_THREADS chose already. False
    when numpy's BLAS is another (its own threading stays)."""
    if os.environ.get("OPENBLAS_NUM_THREADS"):
        return False
    for library in _loaded_openblas():
        for name in SETTERS:
            if hasattr(library, name):
                setter = getattr(library, name)
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                setter(count)
                return True
    return False


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

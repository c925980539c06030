"""One run per --out at a time: an exclusive lock on `.NAME.lock` beside the output folder,
held for the whole run, holding the owner's pid so a second run can name it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from scribe.engine.errors import InputError


class RunLock:
    """Taken with `acquire`, given back with `release` (the kernel gives it back when the
    process dies, so a killed run never leaves a stale lock)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, out: Path) -> RunLock:
        path = out.parent / f".{out.name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise InputError(
                    f"--out {out}: another finetune (pid {owner}) is writing it; wait for it to "
                    "finish (or stop it), or choose another --out"
                ) from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is at the path now, or two runs would each hold a different one.
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return cls(path, fd)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)

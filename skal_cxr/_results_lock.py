"""The lock of a results folder: one simulation at a time, and whether it still runs.

Part of the results-folder format of :mod:`skal_cxr._results` (which
re-exports these names).
"""

import json
import os
import socket
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Union

from .exceptions import ResultsDirError

fcntl: ModuleType | None
try:  # POSIX; without it (Windows) folders cannot be locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["LOCK_FILE", "ResultsLock", "owner_alive"]

LOCK_FILE = ".skal-cxr.lock"
PathLike = Union[str, "os.PathLike[str]"]


class ResultsLock:
    """Exclusive lock on a results folder, held while a simulation runs.

    The lock is ``fcntl.flock`` on ``.skal-cxr.lock``, a file that holds the
    owner's PID, host and a random token. The operating system releases the
    lock when its process ends, however it ends, so a lock file left by a
    killed run is recognised as stale (nobody holds it) and taken over;
    workers use the token and the lock to tell whether the run they work
    for is still alive (:func:`owner_alive`).

    Parameters
    ----------
    results_dir : path-like
    """

    def __init__(self, results_dir: PathLike) -> None:
        self.path = Path(results_dir) / LOCK_FILE
        self.token: str | None = None
        self._fd: int | None = None

    def acquire(self) -> "ResultsLock":
        """Take the lock; raise :class:`ResultsDirError` naming the holder if taken."""
        if fcntl is None:  # pragma: no cover
            raise ResultsDirError("results folders can only be locked on POSIX systems.")
        for attempt in range(20):  # a worker's brief shared probe is not a holder
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = _lock_holder(self.path)
                if attempt < 19:
                    time.sleep(0.05)
                    continue
                raise ResultsDirError(
                    f"{self.path.parent} is in use by another simulation (process "
                    f"{holder.get('pid', '?')} on {holder.get('host', '?')}); wait for it to "
                    "finish or stop it, or use another --output."
                ) from None
            try:  # the file may have been removed by a holder releasing it meanwhile
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.token = uuid.uuid4().hex
        info = {"pid": os.getpid(), "host": socket.gethostname(), "token": self.token}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and release the lock."""
        if self._fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> "ResultsLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> Literal[False]:
        self.release()
        return False


def _lock_holder(path: PathLike) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def owner_alive(results_dir: PathLike, token: str) -> bool:
    """Whether the run holding ``token`` still holds the folder's lock.

    False once that run has ended (its lock is free or the lock file is
    gone) or another run took the folder over; a worker then stops.
    """
    if fcntl is None:  # pragma: no cover (no locks, so no owner: see acquire)
        return False
    path = Path(results_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        if token.encode() not in os.pread(fd, 4096, 0):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True  # the owner holds it exclusively
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)

"""One writer process per project: the lock that ``serve``, ``pull`` and ``init`` hold.

The lock is an ``flock`` on ``PROJECT/project.lock``: the kernel releases it
when its holder ends, however it ends (``SIGKILL`` included), so it never
goes stale the way a file holding a PID does. The holder writes its PID and
command into the locked file, so that a refused command names it. Readers
(``status``, ``export``, ``backup``) take no lock.
"""

import os
from contextlib import contextmanager
from pathlib import Path

from ...exceptions import LabelingError

__all__ = ["LOCK_FILE", "project_lock"]

#: The lock file in a project folder.
LOCK_FILE = "project.lock"


@contextmanager
def project_lock(path, command):
    """Hold the lock of the project folder ``path`` while the block runs.

    Parameters
    ----------
    path : path-like
        The project folder (created if missing, for ``init``).
    command : str
        What holds it (``"serve"``, ``"pull"``, ``"init"``), written into the
        lock file beside this process's PID.

    Yields
    ------
    file : pathlib.Path
        The lock file.

    Raises
    ------
    LabelingError
        While another process holds it (naming that process's PID and command).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover (Windows: no lock)
        yield None
        return
    path = Path(path)
    file = path / LOCK_FILE
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LabelingError(f"cannot open the lock file {file}: {exc.strerror}.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
            who = f"PID {holder[0]}" if holder else "another process"
            what = f"skal-cxr label {holder[1]} " if len(holder) > 1 else ""
            raise LabelingError(
                f"{path} is in use by {what}({who}); stop it first, or wait until it ends."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield file
        finally:
            os.ftruncate(fd, 0)  # released below (and by the kernel if this process dies)
    finally:
        os.close(fd)

"""Replacing a file atomically and durably: the one routine skal_cxr writes files with.

The guarantee, for every file written here (``config.json``, reports,
image-cache indexes, labeling exports, previews, model checkpoints):

- **atomic**: until the call returns, a reader, or the machine restarted
  after a crash at any moment, finds the old file (or none) or the complete
  new one, never a partial or mixed file;
- **durable**: once it returns, the new content survives a crash or power
  loss: the file's data are ``fsync``-ed before it is renamed over the old
  one, and the folder is ``fsync``-ed after, so that the rename is on disk too.

The content is written to a temporary file in the same folder (a rename
is atomic only within one file system), named after the target, this
process and this thread (``.NAME.PID.THREAD.tmp``), so that concurrent
writers of one file never share a temporary file; the last rename wins. A
temporary file left by a killed process is hidden and never read.
"""

import os
import threading
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "replacing", "fsync_dir"]


def fsync_dir(folder):
    """``fsync`` a folder, so that the renames in it are on disk (where the OS allows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # (Windows: folders cannot be opened)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path, suffix="", mode=None):
    """A temporary path to write; on success it replaces ``path`` (see the guarantee above).

    For writers that take a file name (``joblib.dump``, ``savefig``). If the
    block raises, the temporary file is removed and ``path`` is unchanged.

    Parameters
    ----------
    path : path-like
        The file to replace.
    suffix : str, default=""
        Appended to the temporary name, for writers that choose a format by
        the extension (``".png"``).
    mode : int, default=None
        Permissions of the new file (``0o600``: its owner's only). The
        temporary file is created with them before the writer opens it, so
        the content is never readable by others; ``None`` leaves them to the
        umask.

    Yields
    ------
    tmp : Path
        Where to write the new content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp{suffix}")
    try:
        if mode is not None:
            tmp.unlink(missing_ok=True)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
            os.chmod(tmp, mode)  # whatever the umask
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)  # a writer may have made the file anew
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path, data, encoding="utf-8", mode=None):
    """Replace ``path`` with ``data`` atomically and durably (see the guarantee above).

    Parameters
    ----------
    path : path-like
        The file to replace.
    data : str or bytes
        The new content (text is encoded with ``encoding``, newlines kept).
    encoding : str, default="utf-8"
        Encoding of text.
    mode : int, default=None
        Permissions of the new file (see :func:`replacing`).
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    with replacing(path, mode=mode) as tmp, open(tmp, "wb") as f:
        f.write(data)

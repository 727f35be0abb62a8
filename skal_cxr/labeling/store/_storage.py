"""How the project database fails, in one line each; its integrity check and backup.

A project's labels live in one SQLite file, ``project.sqlite``. Opening a
project checks it (``PRAGMA quick_check``, and that it holds a project's
tables): a truncated, emptied, overwritten or otherwise damaged file is
refused in one line naming the file and the way back, a backup made by
:func:`backup_database` (``skal-cxr label backup PROJECT OUT``). While
serving, a write that the storage refuses (a full disk, a read-only file, a
lock held too long, an I/O error) is a :class:`StorageUnavailable` error:
the web app answers 503 with ``Retry-After`` and goes on serving.
"""

import errno
import os
import sqlite3
import struct
from pathlib import Path

from ...exceptions import LabelingError

__all__ = [
    "StorageUnavailable",
    "DamagedDatabase",
    "storage_error",
    "check_database",
    "read_meta",
    "backup_database",
    "lost_wal_pages",
    "RETRY_AFTER",
    "PROJECT_TABLES",
]

#: The tables every project database holds (``adjudications`` since schema version 2).
PROJECT_TABLES = frozenset({"meta", "images", "raters", "rounds", "queue", "assignments", "labels"})

#: Seconds a client is told to wait before retrying a request the storage refused.
RETRY_AFTER = 30
_DOCS = "see 'Backup and restore' in the labeling guide"


class StorageUnavailable(LabelingError):
    """The storage refused a read or write (full, read-only, locked, failing): retry later."""

    status = 503


class DamagedDatabase(StorageUnavailable):
    """The project database is damaged: restore it from a backup."""


def damaged_message(file, what):
    """The one line that reports a damaged database ``file``.

    Parameters
    ----------
    file : path-like
        The database file.
    what : str
        What is wrong with it.

    Returns
    -------
    message : str
    """
    return (
        f"{file} is damaged ({what}); stop the server and restore the file from a backup "
        f"(skal-cxr label backup makes one; {_DOCS})."
    )


def storage_error(exc, file=None):
    """The user-facing error for a storage failure, or None for any other error.

    Parameters
    ----------
    exc : BaseException
        An error raised while reading or writing the project database.
    file : path-like, default=None
        The database file, named in the message.

    Returns
    -------
    error : StorageUnavailable or None
    """
    name = "the project database" if file is None else str(file)
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return StorageUnavailable(f"the disk holding {name} is full; free some space.")
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StorageUnavailable(f"{name} cannot be written ({exc.strerror}).")
        return StorageUnavailable(f"{name} cannot be read or written ({exc.strerror or exc}).")
    if not isinstance(exc, sqlite3.Error):
        return None
    message = str(exc).lower()
    if "full" in message:
        return StorageUnavailable(f"the disk holding {name} is full; free some space.")
    if "readonly" in message or "read-only" in message:
        return StorageUnavailable(f"{name} is read-only; make it writable again.")
    if "locked" in message or "busy" in message:
        return StorageUnavailable(f"{name} is busy (locked by another process); retry.")
    if "malformed" in message or "not a database" in message or "corrupt" in message:
        return DamagedDatabase(damaged_message(name, str(exc)))
    if "i/o" in message or "unable to open" in message or "disk" in message:
        return StorageUnavailable(f"{name} cannot be read or written ({exc}).")
    return None


def lost_wal_pages(file):
    """Pages committed to ``file``'s WAL that are gone with it (0 when none are).

    A server killed with its WAL deleted leaves ``project.sqlite-shm``,
    whose index header counts the WAL's frames (``mxFrame``, at byte 16)
    and those already copied into the database (``nBackfill``, byte 96),
    without ``project.sqlite-wal``. SQLite deletes the index before the
    WAL, so this is never the state of a clean close or of a crash.
    Read before any connection opens the database (the first one rebuilds
    the index).

    Parameters
    ----------
    file : path-like
        ``project.sqlite`` of a project.

    Returns
    -------
    pages : int
    """
    if os.path.exists(f"{file}-wal"):
        return 0
    try:
        with open(f"{file}-shm", "rb") as f:
            head = f.read(136)
    except OSError:
        return 0
    if len(head) < 136 or not head[12]:  # no index, or never initialised
        return 0
    (frames,) = struct.unpack_from("=I", head, 16)
    (copied,) = struct.unpack_from("=I", head, 96)
    return max(0, frames - copied)


def lost_wal_message(file, pages):
    """The one line that reports a WAL deleted with ``pages`` uncopied pages."""
    return (
        f"{file}-wal was deleted while the project was in use: the last {pages} "
        "page(s) written, the labels acknowledged since the last checkpoint, are lost; "
        f"restore {Path(file).name} from a backup if they matter ({_DOCS})."
    )


def check_database(file):
    """Refuse a damaged project database, in one line naming it.

    A database that fails because its WAL was deleted under a running
    server is reported as that (:func:`lost_wal_pages`).

    Parameters
    ----------
    file : path-like
        ``project.sqlite`` of a project.

    Raises
    ------
    DamagedDatabase
        For an empty file, one that is not an SQLite database, one whose
        pages fail ``PRAGMA quick_check``, or one without a project's tables.
    """
    file = Path(file)
    pages = lost_wal_pages(file)
    try:
        _check_database(file)
    except DamagedDatabase:
        if pages:
            raise DamagedDatabase(lost_wal_message(file, pages)) from None
        raise


def _check_database(file):
    if file.stat().st_size == 0 and not Path(f"{file}-wal").exists():
        raise DamagedDatabase(damaged_message(file, "the file is empty"))
    try:
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise DamagedDatabase(damaged_message(file, str(exc))) from None
    try:
        rows = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        if rows != ["ok"]:
            lines = [line.strip(" *") for row in rows for line in row.splitlines()]
            lines = [line for line in lines if line and line != "in database main"]
            raise DamagedDatabase(
                damaged_message(
                    file,
                    "integrity check: "
                    + (lines[0] if lines else "failed")
                    + (" ..." if len(lines) > 1 else ""),
                )
            )
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not {"meta", "images", "labels"} <= tables:
            raise DamagedDatabase(damaged_message(file, "it holds no labeling project"))
        missing = sorted(PROJECT_TABLES - tables)
        if missing:
            raise DamagedDatabase(damaged_message(file, f"table(s) {', '.join(missing)} missing"))
    except sqlite3.OperationalError as exc:
        error = storage_error(exc, file)
        if error is None or isinstance(error, DamagedDatabase):
            raise DamagedDatabase(damaged_message(file, str(exc))) from None
        raise error from None
    except sqlite3.DatabaseError as exc:
        raise DamagedDatabase(damaged_message(file, str(exc))) from None
    finally:
        conn.close()


def read_meta(db):
    """The ``meta`` table of a project database, as a dict.

    Parameters
    ----------
    db : Database
        The project's database.

    Returns
    -------
    meta : dict of str to str

    Raises
    ------
    LabelingError
        When it cannot be read (one line naming the file).
    """
    try:
        with db.connect() as conn:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as exc:
        raise (
            storage_error(exc, db.file) or LabelingError(f"cannot read {db.file}: {exc}")
        ) from None


def backup_database(file, out):
    """Copy a project database, consistently, while it may be in use.

    SQLite's online backup API copies a snapshot of the database (labels
    acknowledged before the copy began, none half-written) even while the
    server writes; the copy is checked (``PRAGMA integrity_check``) before it
    is given its name.

    Parameters
    ----------
    file : path-like
        ``project.sqlite`` of a project.
    out : path-like
        The backup file to create; must not exist.

    Returns
    -------
    out : pathlib.Path

    Raises
    ------
    LabelingError
        When ``out`` exists, the database is damaged, or the copy fails.
    """
    file, out = Path(file), Path(out)
    if out.exists():
        raise LabelingError(f"{out} exists; give a new file name for the backup.")
    check_database(file)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    src = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # owner only
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise LabelingError(f"the backup of {file} failed its integrity check.")
        finally:
            dst.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if out.exists():
            raise LabelingError(f"{out} exists; give a new file name for the backup.")
        os.replace(tmp, out)
    except (sqlite3.Error, OSError) as exc:
        error = storage_error(exc, out if isinstance(exc, OSError) else file)
        raise (error or LabelingError(f"cannot back up {file}: {exc}")) from None
    finally:
        src.close()
        tmp.unlink(missing_ok=True)
    return out

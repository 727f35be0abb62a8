"""Which files a database connection opened: a deleted or replaced database or WAL.

Each connection remembers the device and inode of the database and its WAL
when it was opened; before each commit :func:`check_files` compares them
with the files the folder holds, and a mismatch raises :class:`LostFile`
(a 503) instead of an acknowledgement. A lost WAL's labels are copied into
the database first, where SQLite still can (:func:`_rescue`).
"""

import os
import sqlite3

from ._storage import StorageUnavailable

__all__ = [
    "LostFile",
    "check_files",
    "missing_message",
    "_files",
    "_identity",
    "_lost_wal",
    "_lost_wal_message",
    "_rescue",
]


def _identity(file):
    """``(device, inode)`` of ``file``, or None when it does not exist."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def missing_message(file):
    """The one line that reports a project database deleted while in use."""
    return (
        f"{file} is missing (deleted while in use?); nothing is written and it is not "
        "recreated: stop the server and restore it from a backup (see 'Backup and restore' "
        "in the labeling guide)."
    )


class LostFile(StorageUnavailable):
    """The database or its WAL was deleted or replaced under an open connection.

    Parameters
    ----------
    message : str
        One line.
    wal : bool, default=False
        Whether it was the WAL (then the server writes nothing more).
    """

    def __init__(self, message, wal=False):
        super().__init__(message)
        self.wal = wal


def _files(file):
    """``(identity of file, identity of its -wal)``."""
    return _identity(file), _identity(f"{file}-wal")


def check_files(conn):
    """Raise :class:`LostFile` when ``conn``'s database or WAL file is no longer on disk.

    A connection keeps its files open: a deleted WAL still takes its writes,
    which vanish with the last connection. Each write transaction checks,
    before it commits, that the files it writes are the ones the folder holds.
    """
    known = getattr(conn, "files", None)
    if known is None:
        return
    now = _files(conn.file)
    if now == known:
        return
    if now[0] != known[0]:
        if now[0] is None:
            raise LostFile(missing_message(conn.file))
        raise LostFile(
            f"{conn.file} was replaced while in use; nothing is written: restart the server."
        )
    if known[1] is None:  # opened before the database was switched to WAL (init)
        conn.files = now
        return
    raise LostFile(_lost_wal_message(conn.file, _rescue(conn)), wal=True)


def _rescue(conn):
    """Copy what the deleted WAL that ``conn`` still holds into the database; whether all was.

    A ``TRUNCATE`` checkpoint reads the frames through the connection's open
    file and writes them into the database file, then empties the shared
    index, so that a connection opened later starts a new, consistent WAL.
    """
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("PRAGMA busy_timeout = 2000")
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error:
        return False
    return busy == 0 and log in (done, 0, -1)


def _lost_wal(conn, now):
    """Whether the WAL that ``conn`` opened is no longer the one on disk (``now``)."""
    files = getattr(conn, "files", None)
    return files is not None and files[1] is not None and files[1] != now[1]


def _lost_wal_message(file, saved):
    what = (
        f"the labels it held were copied into {file.name}"
        if saved
        else "the labels it held could not be copied"
    )
    return (
        f"{file}-wal was deleted or replaced while in use; {what}; nothing more is written "
        "until the server is restarted."
    )

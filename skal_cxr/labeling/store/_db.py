"""The project database: one SQLite file in WAL mode, with a schema version.

Every table is append-only except ``assignments`` (which image a rater holds)
and ``meta``. Each write runs in its own ``BEGIN IMMEDIATE`` transaction,
which serialises writers across threads and processes, and is committed with
``synchronous=FULL`` before the caller answers: a label acknowledged to a
rater survives a crash of the server at any later moment. The writers of
one process queue on a lock before they begin: SQLite makes a writer that
finds the database locked sleep and retry with growing pauses (up to 100 ms
each), which under 8 concurrent raters put hundreds of milliseconds into the
slowest requests; a lock hands the database to the next writer at once.

While the server runs, its requests reuse connections
(:meth:`Database.reuse_connections`): closing the last connection to a WAL database
checkpoints it (an fsync of the main file, about 5 ms), which a connection
per request paid on most requests.

A file removed under a running server is never written to: the database is
opened ``mode=rw`` (a deleted one is not recreated empty), and before each
commit :func:`check_files` compares the database and its WAL with the files
the connection opened (device and inode); a mismatch is a 503
(:class:`LostFile`) instead of an acknowledgement.
"""

import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from ._db_identity import (
    LostFile,
    _files,
    _identity,
    _lost_wal,
    _lost_wal_message,
    _rescue,
    check_files,
    missing_message,
)
from ._storage import StorageUnavailable

__all__ = [
    "SCHEMA_VERSION",
    "DB_FILE",
    "Database",
    "connect",
    "check_files",
    "LostFile",
    "transaction",
    "create_schema",
    "migrate",
    "utcnow",
]

SCHEMA_VERSION = 4
DB_FILE = "project.sqlite"

_SCHEMA = (
    """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,           -- position in the pool, 1-based
    relpath TEXT NOT NULL UNIQUE,     -- relative to the project's image folder, '/'-separated
    sha256 TEXT NOT NULL,
    patient TEXT,
    study_date TEXT                   -- YYYYMMDD or ISO date, for related films
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'rater' CHECK (role IN ('rater', 'adjudicator'))
);
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY,
    strategy TEXT NOT NULL,
    queried TEXT NOT NULL,            -- JSON list of image ids, in query order
    scores TEXT,                      -- JSON list, or null when the strategy gives none
    reserve TEXT NOT NULL,            -- JSON list: next-ranked image ids
    n_labeled INTEGER NOT NULL,
    class_counts TEXT NOT NULL,       -- JSON list, in class order
    fit_time REAL,
    query_time REAL,
    stop_predictions TEXT,            -- JSON list of class codes on the stop set
    created_at TEXT NOT NULL
);
CREATE TABLE queue (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    round INTEGER NOT NULL REFERENCES rounds(round),
    kind TEXT NOT NULL CHECK (kind IN ('batch', 'reserve')),
    seq INTEGER NOT NULL UNIQUE       -- order in which the images were queued
);
CREATE TABLE assignments (
    image_id INTEGER NOT NULL REFERENCES queue(image_id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    state TEXT NOT NULL CHECK (state IN ('open', 'labeled', 'skipped', 'expired')),
    opened_at TEXT NOT NULL,          -- when it was handed out (or reopened by an undo)
    PRIMARY KEY (image_id, rater_id)
);
CREATE TABLE labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    label TEXT,                       -- a class name; null for an undo
    supersedes INTEGER REFERENCES labels(id),
    round INTEGER NOT NULL,
    queue_kind TEXT NOT NULL,
    seconds REAL,
    note TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX labels_image ON labels(image_id, rater_id);
"""
    + """
CREATE TABLE adjudications (          -- append-only: the latest row of an image decides
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    label TEXT NOT NULL,
    note TEXT,
    created_at TEXT NOT NULL
);
"""
)

#: Version 3: corrections of decisions, deferrals, zone scores (see :func:`migrate`).
_V3 = """
ALTER TABLE adjudications ADD COLUMN supersedes INTEGER REFERENCES adjudications(id);
ALTER TABLE labels ADD COLUMN scores TEXT;  -- JSON list of zone scores, or null
CREATE TABLE deferrals (              -- append-only: an adjudicator put a dispute back
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""
_SCHEMA += _V3

#: Version 4: skips as events of their own, the seconds of a decision (see :func:`migrate`).
_V4 = """
ALTER TABLE adjudications ADD COLUMN seconds REAL;  -- the adjudicator's time on the film
CREATE TABLE skips (                  -- append-only: a rater gave an assigned image back
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    seconds REAL,                     -- from handed out (or reopened) to the skip
    created_at TEXT NOT NULL
);
"""
_SCHEMA += _V4

#: Statements that bring a database of version ``v`` to ``v + 1``.
_MIGRATIONS = {
    1: """
ALTER TABLE images ADD COLUMN study_date TEXT;
ALTER TABLE raters ADD COLUMN role TEXT NOT NULL DEFAULT 'rater'
    CHECK (role IN ('rater', 'adjudicator'));
CREATE TABLE adjudications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    rater_id INTEGER NOT NULL REFERENCES raters(id),
    label TEXT NOT NULL,
    note TEXT,
    created_at TEXT NOT NULL
);
""",
    2: _V3,
    3: _V4,
}


def utcnow():
    """The current UTC time as an ISO 8601 string with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class _Connection(sqlite3.Connection):
    """A connection that remembers which database and WAL files it opened.

    ``files`` is ``(database, wal)``, each ``(device, inode)`` or None, taken
    when it was opened; while a connection is open, SQLite never deletes or
    replaces either file, so a change means someone else did.
    """

    file = None
    files = None


def connect(path, *, create=False):
    """A connection to the project database with the project's pragmas.

    Parameters
    ----------
    path : path-like
        The database file.
    create : bool, default=False
        Create the file when it does not exist (only :func:`init_project`
        does); otherwise a missing file is refused, never recreated empty.

    Returns
    -------
    conn : sqlite3.Connection

    Raises
    ------
    StorageUnavailable
        When ``create`` is False and the file does not exist.
    """
    path = Path(path)
    if create:
        target, uri = path, False
    else:
        if not path.is_file():
            raise StorageUnavailable(missing_message(path))
        target, uri = "file:" + quote(os.fsencode(path.resolve())) + "?mode=rw", True
    conn = sqlite3.connect(
        target,
        timeout=30,
        isolation_level=None,
        check_same_thread=False,
        factory=_Connection,
        uri=uri,
    )
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
    except BaseException:
        conn.close()
        raise
    conn.file = path
    conn.files = _files(path)
    return conn


#: Held by this process's write transactions (see the module's docstring).
_WRITE_LOCK = threading.RLock()


@contextmanager
def transaction(conn):
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error).

    A read transaction still open on ``conn`` (a project connection's
    snapshot) is committed first. The writers of this process take turns on
    a lock (other processes wait on SQLite's own lock, ``busy_timeout``).
    """
    if conn.in_transaction:
        conn.execute("COMMIT")
    with _WRITE_LOCK:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            check_files(conn)  # never acknowledge a write to a file that is gone
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        conn.execute("COMMIT")


def create_schema(conn):
    """Create the tables in an empty database and switch it to WAL."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(
        f"BEGIN IMMEDIATE; {_SCHEMA}; INSERT INTO meta VALUES ('schema_version', "
        f"'{SCHEMA_VERSION}'); COMMIT;"
    )


def migrate(conn, version):
    """Bring a database of schema ``version`` up to :data:`SCHEMA_VERSION`, in one transaction.

    Version 2 added the raters' ``role``, the images' ``study_date`` and the
    ``adjudications`` table; version 3 the decisions' ``supersedes`` (a
    revised decision), the labels' zone ``scores`` and the ``deferrals``
    table; version 4 the decisions' ``seconds`` and the ``skips`` table (a
    skip's own event; skips made before it have only their assignment's
    state). Nothing that exists is changed.

    Returns
    -------
    migrated : bool
        Whether anything was done (False when already current or newer).
    """
    if version >= SCHEMA_VERSION or version not in _MIGRATIONS:
        return False
    if conn.in_transaction:
        conn.execute("COMMIT")
    script = "".join(_MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
    conn.executescript(
        f"BEGIN IMMEDIATE; {script}; UPDATE meta SET value = '{SCHEMA_VERSION}' "
        "WHERE key = 'schema_version'; COMMIT;"
    )
    return True


class Database:
    """The database of the project folder ``path``: it hands out connections.

    Every :meth:`connect` gives a connection of its own, so one object may be
    shared by threads, and several processes may open the same project.
    Between :meth:`reuse_connections` and :meth:`close_connections` (the
    server's lifetime), connections are kept open and reused.

    Parameters
    ----------
    path : path-like
        The project folder (the database is its ``project.sqlite``).
    """

    def __init__(self, path):
        self.file = Path(path) / DB_FILE
        self._kept = None

    def connect(self):
        """A connection whose reads form one snapshot, closed on exit (``with``).

        Returns
        -------
        snapshot : Snapshot
            Entering it gives the :class:`sqlite3.Connection`.

        Raises
        ------
        StorageUnavailable
            When the database file is missing (it is never recreated), or
            after its WAL was lost under this server (see :class:`LostFile`).
        """
        kept = self._kept
        if kept is not None and kept.pid == os.getpid():
            conn = kept.take()
            return Snapshot(conn, kept.give_back)
        return Snapshot(connect(self.file))

    def reuse_connections(self, size=16):
        """Keep up to ``size`` idle connections open for reuse, until :meth:`close_connections`."""
        if self._kept is None:
            self._kept = _Connections(self.file, size)

    def close_connections(self):
        """Close the kept connections; later ones are opened and closed per use again."""
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.close()

    def meta(self, key, default=None):
        """The ``meta`` table's value of ``key`` (a string), or ``default``."""
        with self.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key, value):
        """Set the ``meta`` table's ``key`` to the string ``value`` (committed on return)."""
        with self.connect() as conn, transaction(conn):
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


class _Connections:
    """Idle connections to one database file, reused last in, first out.

    A connection goes back only after a clean exit with no transaction open;
    one whose use raised is closed. When the file is no longer the one the
    set was opened on (replaced), every idle connection is closed, so that
    no write goes to a file that is gone; a missing file is refused. When an
    open connection's WAL is no longer on disk (deleted or replaced), what
    it still holds is copied into the database and every later request is
    refused (:class:`LostFile`) until the server restarts. A forked child
    never uses its parent's connections (see :meth:`Database.connect`).
    """

    def __init__(self, file, size):
        self.file, self.size = file, size
        self.pid = os.getpid()
        self.identity = _identity(file)
        self.idle = []
        self.closed = False
        self.fault = None
        self.lock = threading.Lock()

    def take(self):
        """A connection to the database file as it is now.

        Raises
        ------
        StorageUnavailable
            The file is missing, or a WAL was lost (then for good).
        """
        now = _files(self.file)
        with self.lock:
            stale, lost = [], None
            if self.fault is None and now[0] is None:
                stale, self.idle = self.idle, []
                fault = StorageUnavailable(missing_message(self.file))
            else:
                fault = self.fault
            if fault is None and now[0] != self.identity:
                stale, self.idle, self.identity = self.idle, [], now[0]
            if fault is None:
                lost = next((c for c in self.idle if _lost_wal(c, now)), None)
                if lost is not None:
                    stale, self.idle = self.idle, []
                    fault = self.fault = LostFile(
                        _lost_wal_message(self.file, _rescue(lost)), wal=True
                    )
            conn = self.idle.pop() if fault is None and self.idle else None
        for c in stale:
            c.close()
        if fault is not None:
            raise fault
        return conn if conn is not None else connect(self.file)

    def give_back(self, conn, error=None):
        """Keep ``conn`` for reuse if it ended cleanly and its files are still on disk."""
        with self.lock:
            if isinstance(error, LostFile) and error.wal and self.fault is None:
                self.fault = error
            keep = error is None and not self.closed and len(self.idle) < self.size
            files = getattr(conn, "files", None)
            if keep and self.fault is None and files == _files(self.file):
                self.idle.append(conn)
                return
        conn.close()

    def close(self):
        with self.lock:
            self.closed = True
            idle, self.idle = self.idle, []
        for c in idle:
            c.close()


class Snapshot:
    """A connection whose reads form one snapshot, closed on exit.

    Entering begins a deferred transaction, so that the several SELECTs of
    one read (status, progress) see the database as of their first SELECT,
    not the writes of concurrent requests in between; :func:`transaction`
    ends it before it begins its own.

    Parameters
    ----------
    conn : sqlite3.Connection
    release : callable, default=None
        ``release(conn, error)`` takes the connection back instead of closing
        it, with the error that ended its use or None (see
        :meth:`Database.reuse_connections`).
    """

    def __init__(self, conn, release=None):
        self.conn = conn
        self.release = release

    def __enter__(self):
        self.conn.execute("BEGIN")
        return self.conn

    def __exit__(self, *exc):
        error = exc[1] if exc[0] is not None else None
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK" if error is not None else "COMMIT")
            if error is None and self.conn.in_transaction:
                error = RuntimeError("a transaction was left open")
        except BaseException as failed:
            error = error or failed
            raise
        finally:
            if self.release is not None:
                self.release(self.conn, error)
            else:
                self.conn.close()
        return False

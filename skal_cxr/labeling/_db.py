"""The project database: one SQLite file in WAL mode, with a schema version.

Every table is append-only except ``assignments`` (which image a rater holds)
and ``meta``. Each write runs in its own ``BEGIN IMMEDIATE`` transaction,
which serialises writers across threads and processes, and is committed with
``synchronous=FULL`` before the caller answers: a label acknowledged to a
rater survives a crash of the server at any later moment.
"""

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone

__all__ = ["SCHEMA_VERSION", "DB_FILE", "connect", "transaction", "create_schema", "utcnow"]

SCHEMA_VERSION = 1
DB_FILE = "project.sqlite"

_SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,           -- position in the pool, 1-based
    relpath TEXT NOT NULL UNIQUE,     -- relative to the project's image folder, '/'-separated
    sha256 TEXT NOT NULL,
    patient TEXT
);
CREATE TABLE raters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
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


def utcnow():
    """The current UTC time as an ISO 8601 string with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def connect(path):
    """A connection to the project database with the project's pragmas."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


@contextmanager
def transaction(conn):
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create_schema(conn):
    """Create the tables in an empty database and switch it to WAL."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(
        f"BEGIN IMMEDIATE; {_SCHEMA}; INSERT INTO meta VALUES ('schema_version', "
        f"'{SCHEMA_VERSION}'); COMMIT;"
    )

"""Recovering from an interrupted :func:`~skal_cxr.labeling.init_project`.

An init writes its database as ``project.sqlite.partial`` and renames it
when whole; a rerun after a kill finds the folder holding only what the
interrupted init wrote (:func:`_only_a_cache`) and starts over. The
:class:`_Draft` is what the cold start reads of a project before its
database exists.
"""

import json
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from .._atomic import fsync_dir
from ..exceptions import LabelingError
from ._settings import (
    CACHE_DIR,
    CHECKPOINT_DIR,
    DICOM_DIR,
    PREVIEW_DIR,
    VIEW_DIR,
    read_settings,
    round_config,
)
from .store._db import DB_FILE, connect, create_schema, transaction
from .store._lock import LOCK_FILE
from .store._pool import load_pool
from .store._queue import Queue

#: The database while :func:`init_project` writes it, renamed ``project.sqlite`` when whole.
PARTIAL_FILE = DB_FILE + ".partial"

__all__ = [
    "PARTIAL_FILE",
    "_Draft",
    "_remove_database",
    "_unfinished_database",
    "_only_a_cache",
    "_write_database",
]


class _Draft:
    """What the cold start reads of a project, before its database exists."""

    def __init__(self, path, config, table):
        self.path = path
        self.config = read_settings(config)
        self.round_config = round_config(self.config)
        self.classes = list(config["classes"])
        self._table = table
        self._pool = None

    def n_images(self):
        return len(self._table)

    def pool_array(self):
        if self._pool is None:
            self._pool = load_pool(
                self.path, self.config["image_size"], self.config["image_dir"], self._table
            )
        return self._pool


def _remove_database(file):
    """Delete a database file and its WAL and index, if they exist."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)


def _unfinished_database(file):
    """Whether ``file`` is what an init of an earlier version left when killed.

    That is an empty file, or a database without round 0 (queued last), a
    rater or a label: nothing a user made is in it.
    """
    file = Path(file)
    if file.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"file:{quote(os.fsencode(file.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "rounds" in tables and conn.execute("SELECT 1 FROM rounds LIMIT 1").fetchone():
            return False
        return all(
            conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() is None
            for t in ("raters", "labels")
            if t in tables
        )
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _only_a_cache(path):
    """Whether ``path`` is empty or holds just what an interrupted init wrote.

    That is the image cache, the view of the pool, for a project over a
    PACS its DICOM store, the
    empty previews and checkpoints folders, the project lock, the database
    being written (never yet ``project.sqlite``), or the ``project.sqlite``
    that an init of an earlier version left when killed (empty, or without
    its first batch, raters and labels).
    """
    found = {p.name for p in path.iterdir()}
    partial = {f"{PARTIAL_FILE}{s}" for s in ("", "-wal", "-shm", "-journal")}
    leftovers = {f"{DB_FILE}-wal", f"{DB_FILE}-shm", f"{DB_FILE}-journal"}
    allowed = {CACHE_DIR, DICOM_DIR, VIEW_DIR, PREVIEW_DIR, CHECKPOINT_DIR, LOCK_FILE, DB_FILE}
    if not found <= allowed | partial | leftovers:
        return False
    for sub in (PREVIEW_DIR, CHECKPOINT_DIR):
        if (path / sub).is_dir() and any((path / sub).iterdir()):
            return False
    if (path / DB_FILE).exists():
        if not _unfinished_database(path / DB_FILE):
            return False
    cache = path / CACHE_DIR
    return not cache.exists() or all(p.name.startswith("images-") for p in cache.iterdir())


def _write_database(path, images, config, stop_set, batch, reserve, strategy):
    """Write a new project's database, renamed ``project.sqlite`` only when whole.

    Parameters
    ----------
    path : Path
        The project folder.
    images : list of tuple
        ``(id, relpath, sha256, patient, study_date)`` of every image.
    config : dict
        The project's settings, stored in ``meta``.
    stop_set : ndarray of int
        Image ids of the stopping set.
    batch, reserve : list of int
        Image ids of round 0's batch and its reserve.
    strategy : str
        The strategy that chose round 0.
    """
    # The database is written under another name and renamed when complete:
    # project.sqlite exists only whole, and init killed at any moment resumes.
    partial = path / PARTIAL_FILE
    _remove_database(partial)
    conn = connect(partial, create=True)
    try:
        create_schema(conn)
        with transaction(conn):
            conn.executemany(
                "INSERT INTO images (id, relpath, sha256, patient, study_date) "
                "VALUES (?, ?, ?, ?, ?)",
                images,
            )
            conn.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config),))
            conn.execute(
                "INSERT INTO meta VALUES ('stop_set', ?)", (json.dumps(stop_set.tolist()),)
            )
            Queue(config["labels_per_image"], config["lease_seconds"]).insert_round(
                conn,
                round_=0,
                strategy=strategy,
                queried=batch,
                reserve=reserve,
                n_labeled=0,
                class_counts=[0] * len(config["classes"]),
            )
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # the last connection: the WAL is copied in and deleted
    if os.path.getsize(f"{partial}-wal") if os.path.exists(f"{partial}-wal") else 0:
        raise LabelingError(f"{partial}-wal could not be copied into {partial}; rerun init.")
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, path / DB_FILE)
    _remove_database(partial)
    fsync_dir(path)

"""Reads that span several SELECTs see one snapshot of the project database.

The server answers ``/api/status`` and ``/api/next`` while other raters'
requests write; a read made of several SELECTs must not see a queue row in
one SELECT and miss it in the next (it raised ``KeyError`` under load).
"""

import sqlite3

from skal_cxr.labeling.store import _db
from skal_cxr.labeling.store._db import DB_FILE


class _WriterSlipsIn:
    """A connection that lets another connection queue and assign an image
    right before its first SELECT on the assignments table."""

    def __init__(self, conn, write):
        self._conn, self._write, self._done = conn, write, False

    def execute(self, sql, *args):
        if not self._done and "FROM assignments" in sql and sql.lstrip().startswith("SELECT"):
            self._done = True
            self._write()
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_status_reads_one_snapshot_while_another_rater_is_assigned(make_project, monkeypatch):
    project = make_project()
    project.add_rater("a")
    first = project.next_image("a")["image_id"]
    db = project.path / DB_FILE

    def write():  # what a concurrent GET /api/next does: queue a reserve image, assign it
        with sqlite3.connect(db, isolation_level=None) as other:
            other.execute("BEGIN IMMEDIATE")
            image = other.execute(
                "SELECT MIN(id) FROM images WHERE id NOT IN (SELECT image_id FROM queue)"
            ).fetchone()[0]
            seq = other.execute("SELECT MAX(seq) FROM queue").fetchone()[0]
            other.execute(
                "INSERT INTO queue (image_id, round, kind, seq) VALUES (?, 0, 'reserve', ?)",
                (image, seq + 1),
            )
            other.execute(
                "INSERT INTO assignments (image_id, rater_id, state, opened_at) "
                "VALUES (?, 1, 'open', '2026-01-01T00:00:00+00:00')",
                (image,),
            )
            other.execute("COMMIT")
        other.close()

    real_connect = _db.connect
    monkeypatch.setattr(_db, "connect", lambda path: _WriterSlipsIn(real_connect(path), write))
    status = project.status()
    assert status["raters"] == [{"name": "a", "n_labels": 0}]
    progress = project.progress()
    assert progress["progress"]["queried"] >= 1 and first is not None

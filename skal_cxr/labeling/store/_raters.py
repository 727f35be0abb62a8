"""The raters of a project: names and secret tokens (only their SHA-256 is stored)."""

import hashlib
import hmac
import secrets

from ...exceptions import Conflict, LabelingError, NotFound
from ._db import transaction, utcnow

__all__ = ["Raters", "token_hash", "ROLES"]

#: A rater labels; an adjudicator also decides the images whose raters disagree.
ROLES = ("rater", "adjudicator")


def token_hash(token):
    """The SHA-256 (hex) of a rater's token, as stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Raters:
    """The raters table of a project's :class:`~skal_cxr.labeling.store._db.Database`.

    Parameters
    ----------
    db : Database
        The project's database.
    """

    def __init__(self, db):
        self.db = db

    def add(self, name, role="rater"):
        """Add a rater; return the rater's secret token (see ``LabelingProject.add_rater``)."""
        if role not in ROLES:
            raise LabelingError(f"role must be one of {ROLES}; got {role!r}.")
        name = str(name).strip()
        if not name or len(name) > 100 or any(ch in name for ch in "\r\n\t,"):
            raise LabelingError(
                f"rater name must be 1-100 characters without commas, tabs "
                f"or newlines; got {name!r}."
            )
        token = secrets.token_urlsafe(32)
        with self.db.connect() as conn, transaction(conn):
            if conn.execute("SELECT 1 FROM raters WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"a rater named {name!r} already exists.")
            conn.execute(
                "INSERT INTO raters (name, token_sha256, created_at, role) VALUES (?, ?, ?, ?)",
                (name, token_hash(token), utcnow(), role),
            )
        return token

    def names(self):
        """Names of the raters, in the order they were added."""
        with self.db.connect() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM raters ORDER BY id")]

    def names_by_id(self, conn):
        """``{rater_id: name}`` in the order the raters were added."""
        return dict(conn.execute("SELECT id, name FROM raters ORDER BY id").fetchall())

    def for_token(self, token):
        """The rater's name for a token, or ``None`` (compared in constant time)."""
        if not token:
            return None
        digest = token_hash(token)
        with self.db.connect() as conn:
            rows = conn.execute("SELECT name, token_sha256 FROM raters").fetchall()
        found = None
        for name, stored in rows:
            if hmac.compare_digest(stored, digest):
                found = name
        return found

    def id_of(self, conn, rater):
        """The id of the rater named ``rater``; :class:`NotFound` if there is none."""
        row = conn.execute("SELECT id FROM raters WHERE name = ?", (rater,)).fetchone()
        if row is None:
            raise NotFound(f"no rater named {rater!r}.")
        return row[0]

    def role_of(self, conn, rid):
        """The role (one of :data:`ROLES`) of rater ``rid``."""
        return conn.execute("SELECT role FROM raters WHERE id = ?", (rid,)).fetchone()[0]

    def label_counts(self, conn):
        """``{name: number of standing labels}`` of every rater, in order."""
        return dict(
            conn.execute(
                "SELECT r.name, COUNT(c.image_id) FROM raters r LEFT JOIN ("
                "SELECT image_id, rater_id FROM labels WHERE id IN (SELECT MAX(id) FROM labels "
                "GROUP BY image_id, rater_id) AND label IS NOT NULL) c ON c.rater_id = r.id "
                "GROUP BY r.id ORDER BY r.id"
            ).fetchall()
        )

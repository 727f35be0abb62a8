"""Labels: recorded, skipped, withdrawn, corrected. The labels table is append-only.

An undo adds a row superseding the label with no label; a correction adds a
row superseding it with the new label (any of one's standing labels, not
only the latest); nothing is changed or deleted, so the audit trail keeps
the old and the new value of every change.
"""

import json
from datetime import datetime

import numpy as np

from ...exceptions import Conflict, Forbidden, InvalidLabel, NotFound
from ._db import transaction, utcnow

__all__ = ["Labels", "check_label_id", "check_seconds"]


def check_label_id(label_id):
    """``label_id`` as an int; :class:`NotFound` when it cannot be one (not 64-bit)."""
    if isinstance(label_id, bool) or not isinstance(label_id, (int, np.integer)):
        raise NotFound("no such label.")
    if not -(2**63) <= int(label_id) < 2**63:  # SQLite integers are 64-bit
        raise NotFound("no such label.")
    return int(label_id)


def check_seconds(seconds):
    """The seconds a reader spent on a film, as a float (None stays None).

    Raises
    ------
    InvalidLabel
        For anything but a finite non-negative number.
    """
    if seconds is None:
        return None
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value >= 0):
        raise InvalidLabel(f"seconds must be a finite non-negative number; got {seconds!r}.")
    return value


def _seconds_since(start, end):
    """Seconds between two of the database's ISO 8601 times (None when unreadable)."""
    try:
        return max(
            0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        )
    except (TypeError, ValueError):
        return None


def check_text(value, name):
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate such as ``"\\ud800"``)."""
    if value is None:
        return None
    value = str(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidLabel(
            f"{name} is not valid Unicode text (it holds a lone surrogate)."
        ) from None
    return value


class Labels:
    """The raters' labels of a project (see ``LabelingProject.submit_label``).

    Parameters
    ----------
    db : Database
        The project's database.
    raters : Raters
        Its raters.
    images : ImageStore
        Its images.
    queue : Queue
        Its queue (the assignments).
    classes : list of str
        The project's classes.
    scoring : ScoringScheme or None, default=None
        The project's zone scoring scheme (the class is the binned total of
        the zone scores), or None for whole-image labels.
    """

    def __init__(self, db, raters, images, queue, classes, scoring=None):
        self.db, self.raters, self.images, self.queue = db, raters, images, queue
        self.classes = list(classes)
        self.scoring = scoring

    def _check(self, label, scores):
        """``(label, scores as JSON or None)``: the class, from the scores with a scheme."""
        if self.scoring is not None:
            if scores is None:
                raise InvalidLabel(
                    f"this project is scored with {self.scoring.name}: send the zone scores."
                )
            values = self.scoring.check(scores)
            derived = self.scoring.label_of(values, self.classes)
            if label is not None and label != derived:
                raise InvalidLabel(
                    f"the scores total {sum(values)}, which is class {derived!r}, not {label!r}."
                )
            return derived, json.dumps(values)
        if scores is not None:
            raise InvalidLabel("this project has no scoring scheme: send a label, not scores.")
        if label not in self.classes:
            raise InvalidLabel(f"label must be one of {self.classes}; got {label!r}.")
        return label, None

    @staticmethod
    def _check_note(note):
        if note is not None and len(str(note)) > 2000:
            raise InvalidLabel("note is longer than 2000 characters.")
        return check_text(note, "note")

    def submit(self, rater, image_id, label, seconds=None, note=None, scores=None):
        """Record a label of an image assigned to ``rater``; committed on return.

        With a scoring scheme, ``scores`` (one per zone) give the label: the
        class of their binned total (``label`` may be None, or must match).
        """
        label, scores_json = self._check(label, scores)
        seconds = check_seconds(seconds)
        note = self._check_note(note)
        with self.db.connect() as conn, transaction(conn):
            rid = self.raters.id_of(conn, rater)
            img = self.images.row(conn, image_id)["id"]
            row = self.queue.assignment(conn, img, rid)
            if row is None or row["state"] != "open":
                why = {
                    "labeled": " (already labeled: undo first)",
                    "expired": " any more (held too long: it went to another rater)",
                }
                raise Conflict(
                    "this image is not assigned to you for labeling"
                    + why.get(row["state"] if row is not None else "", "")
                    + "."
                )
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO labels (image_id, rater_id, label, supersedes, round, queue_kind, "
                "seconds, note, created_at, scores) VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                (
                    img,
                    rid,
                    label,
                    row["round"],
                    row["kind"],
                    None if seconds is None else float(seconds),
                    None if note is None else str(note),
                    created,
                    scores_json,
                ),
            )
            self.queue.set_assignment(conn, img, rid, "labeled")
            label_id = cur.lastrowid
        return {"label_id": label_id, "image_id": str(img), "label": label, "created_at": created}

    def skip(self, rater, image_id):
        """Give an assigned image back; this rater will not see it again.

        The skip is an event of its own (the ``skips`` table): rater, image,
        time and the seconds from the image being handed out (or reopened)
        to the skip.
        """
        with self.db.connect() as conn, transaction(conn):
            rid = self.raters.id_of(conn, rater)
            img = self.images.row(conn, image_id)["id"]
            row = self.queue.assignment(conn, img, rid)
            if row is None or row["state"] != "open":
                raise Conflict("this image is not assigned to you for labeling.")
            (opened,) = conn.execute(
                "SELECT opened_at FROM assignments WHERE image_id = ? AND rater_id = ?", (img, rid)
            ).fetchone()
            created = utcnow()
            conn.execute(
                "INSERT INTO skips (image_id, rater_id, seconds, created_at) VALUES (?, ?, ?, ?)",
                (img, rid, _seconds_since(opened, created), created),
            )
            self.queue.set_assignment(conn, img, rid, "skipped")
        return {"image_id": str(img), "skipped": True}

    def undo(self, rater, label_id):
        """Withdraw one's own standing label; the image comes back to this rater next."""
        label_id = check_label_id(label_id)
        with self.db.connect() as conn, transaction(conn):
            rid = self.raters.id_of(conn, rater)
            row = self._standing(conn, rid, label_id)
            conn.execute(
                "INSERT INTO labels (image_id, rater_id, label, supersedes, round, queue_kind, "
                "seconds, note, created_at) VALUES (?, ?, NULL, ?, ?, ?, NULL, NULL, ?)",
                (row["image_id"], rid, label_id, row["round"], row["queue_kind"], utcnow()),
            )
            self.queue.set_assignment(conn, row["image_id"], rid, "open", reopen=True)
        return {"label_id": label_id, "undone": True, "image_id": str(row["image_id"])}

    def mine(self, rater):
        """``rater``'s standing labels, most recent first (the corrections panel).

        Returns
        -------
        labels : list of dict
            ``label_id``, ``image_id``, ``filename``, ``label``, ``note``,
            ``scores`` (list of int or None), ``round``, ``corrected`` (whether
            it replaced an earlier label) and ``created_at``.
        """
        with self.db.connect() as conn:
            rid = self.raters.id_of(conn, rater)
            rows = conn.execute(
                "SELECT l.id, l.image_id, i.relpath, l.label, l.note, l.scores, l.round, "
                "l.supersedes, l.created_at FROM labels l JOIN images i ON i.id = l.image_id "
                "WHERE l.id IN (SELECT MAX(id) FROM labels WHERE rater_id = ? GROUP BY image_id) "
                "AND l.label IS NOT NULL ORDER BY l.id DESC",
                (rid,),
            ).fetchall()
        return [
            {
                "label_id": r["id"],
                "image_id": str(r["image_id"]),
                "filename": r["relpath"],
                "label": r["label"],
                "note": r["note"],
                "scores": None if r["scores"] is None else json.loads(r["scores"]),
                "round": r["round"],
                "corrected": r["supersedes"] is not None,
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    def _standing(self, conn, rid, label_id):
        """The label row ``label_id`` of rater ``rid``, refused unless it still stands."""
        row = conn.execute("SELECT * FROM labels WHERE id = ?", (label_id,)).fetchone()
        if row is None or row["label"] is None:
            raise NotFound("no such label.")
        if row["rater_id"] != rid:
            raise Forbidden("this label is another rater's.")
        latest = conn.execute(
            "SELECT MAX(id) FROM labels WHERE image_id = ? AND rater_id = ?",
            (row["image_id"], rid),
        ).fetchone()[0]
        if latest != label_id:
            raise Conflict("this label was already withdrawn or replaced.")
        return row

    def correct(self, rater, label_id, label, note=None, scores=None):
        """Replace one of ``rater``'s standing labels by ``label``; committed on return.

        A new row supersedes the old one (which stays); the image keeps its
        place and its assignment.

        Parameters
        ----------
        rater : str
            The rater's name.
        label_id : int
            The standing label to correct (any of :meth:`mine`).
        label : str
            The new class.
        note : str or None, default=None
            Why (kept with the new row).
        scores : list of int or None, default=None
            The new zone scores, with a scoring scheme (the class is then
            their binned total, see :meth:`submit`).

        Returns
        -------
        correction : dict
            ``label_id`` (the new row), ``supersedes``, ``image_id``,
            ``label``, ``previous_label`` and ``created_at``.

        Raises
        ------
        InvalidLabel
            ``label`` is not a class, or it is the label that stands.
        NotFound, Forbidden, Conflict
            No such label; another rater's; already withdrawn or replaced.
        """
        label_id = check_label_id(label_id)
        label, scores_json = self._check(label, scores)
        note = self._check_note(note)
        with self.db.connect() as conn, transaction(conn):
            rid = self.raters.id_of(conn, rater)
            row = self._standing(conn, rid, label_id)
            if row["label"] == label and row["scores"] == scores_json:
                raise InvalidLabel(f"this label is {label!r} already.")
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO labels (image_id, rater_id, label, supersedes, round, queue_kind, "
                "seconds, note, created_at, scores) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                (
                    row["image_id"],
                    rid,
                    label,
                    label_id,
                    row["round"],
                    row["queue_kind"],
                    note,
                    created,
                    scores_json,
                ),
            )
        return {
            "label_id": cur.lastrowid,
            "supersedes": label_id,
            "image_id": str(row["image_id"]),
            "label": label,
            "previous_label": row["label"],
            "created_at": created,
        }

    def history(self):
        """Every label row (append-only history), oldest first, as dicts."""
        with self.db.connect() as conn:
            rows = conn.execute(
                "SELECT l.id AS label_id, l.image_id, i.relpath, r.name AS rater, l.label, "
                "l.supersedes, l.round, l.queue_kind, l.seconds, l.note, l.created_at "
                "FROM labels l JOIN raters r ON r.id = l.rater_id JOIN images i "
                "ON i.id = l.image_id ORDER BY l.id"
            ).fetchall()
        out = [dict(r) for r in rows]
        for r in out:
            r["image_id"] = str(r["image_id"])
        return out

    def time_span(self, conn):
        """``{image_id: (first, last)}`` times of each image's labels."""
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT image_id, MIN(created_at), MAX(created_at) FROM labels "
                "WHERE label IS NOT NULL GROUP BY image_id"
            )
        }

"""Adjudication: images whose raters disagree wait for an adjudicator's decision.

With ``consensus="adjudicate"``, an image whose standing labels are at least
``adjudicate_spread`` classes apart (1: any disagreement) has no consensus,
and does not train the model, until a rater with the adjudicator role has
seen the other raters' labels and notes and decided. Decisions are
append-only rows of the ``adjudications`` table; the latest row of an image
decides. An adjudicator never decides an image they labeled themselves.
"""

from ..datasets._agreement import disagrees, pairwise_agreement, specific_agreement
from ..exceptions import Conflict, Forbidden, InvalidLabel
from ._db import transaction, utcnow

__all__ = ["Adjudications"]


class Adjudications:
    """The adjudication queue and decisions of a project.

    Parameters
    ----------
    db : Database
        The project's database.
    raters : Raters
        Its raters (their roles).
    images : ImageStore
        Its images.
    queue : Queue
        Its queue (image states, standing labels).
    classes : list of str
        The project's classes, least to most severe.
    active : bool
        Whether the project's consensus rule is ``"adjudicate"``.
    min_spread : int
        Ordinal spread of the labels that calls for adjudication.
    """

    def __init__(self, db, raters, images, queue, classes, active, min_spread=1):
        self.db, self.raters, self.images, self.queue = db, raters, images, queue
        self.classes = list(classes)
        self.active = bool(active)
        self.min_spread = int(min_spread)

    def decided(self, conn):
        """``{image_id: row}`` of the latest decision of every adjudicated image."""
        rows = conn.execute(
            "SELECT a.*, r.name AS adjudicator FROM adjudications a JOIN raters r "
            "ON r.id = a.rater_id WHERE a.id IN (SELECT MAX(id) FROM adjudications "
            "GROUP BY image_id)"
        ).fetchall()
        return {r["image_id"]: r for r in rows}

    def needs(self, state):
        """Whether an image state (``Queue.image_states``) calls for adjudication."""
        if not self.active or not state["done"] or len(state["labels"]) < 2:
            return False
        codes = [self.classes.index(v) for v in state["labels"].values()]
        return disagrees(codes, self.min_spread)

    def pending(self, conn, states=None, exclude_rater=None):
        """Image ids waiting for a decision, in queue order (not labeled by ``exclude_rater``)."""
        states = self.queue.image_states(conn) if states is None else states
        done = self.decided(conn)
        return [
            i
            for i, s in states.items()
            if self.needs(s) and i not in done and exclude_rater not in s["labels"]
        ]

    def _check_role(self, conn, rater):
        rid = self.raters.id_of(conn, rater)
        if self.raters.role_of(conn, rid) != "adjudicator":
            raise Forbidden("only a rater with the adjudicator role adjudicates.")
        return rid

    def under_review(self, conn, rid, image_id):
        """Whether adjudicator ``rid`` may see an image: pending for them, or decided by them."""
        if self.raters.role_of(conn, rid) != "adjudicator":
            return False
        done = self.decided(conn)
        if image_id in done:
            return done[image_id]["rater_id"] == rid
        return image_id in self.pending(conn, exclude_rater=rid)

    def labels_of(self, conn, image_id):
        """The standing labels of an image with their notes and seconds, rater by rater."""
        rows = conn.execute(
            "SELECT r.name AS rater, l.label, l.note, l.seconds, l.created_at FROM labels l "
            "JOIN raters r ON r.id = l.rater_id WHERE l.image_id = ? AND l.id IN "
            "(SELECT MAX(id) FROM labels WHERE image_id = ? GROUP BY rater_id) "
            "AND l.label IS NOT NULL ORDER BY l.id",
            (image_id, image_id),
        ).fetchall()
        return [dict(r) for r in rows]

    def next_for(self, rater):
        """The next image for adjudicator ``rater``, with the raters' labels and notes.

        Returns
        -------
        next : dict
            ``image_id`` (str or None), ``labels`` (``rater``, ``label``,
            ``note``, ``seconds``, ``created_at`` of each standing label) and
            ``pending`` (images waiting for this adjudicator, this one included).
        """
        with self.db.connect() as conn:
            rid = self._check_role(conn, rater)
            waiting = self.pending(conn, exclude_rater=rid)
            if not waiting:
                return {"image_id": None, "labels": [], "pending": 0}
            return {
                "image_id": str(waiting[0]),
                "labels": self.labels_of(conn, waiting[0]),
                "pending": len(waiting),
            }

    def decide(self, rater, image_id, label, note=None):
        """Record adjudicator ``rater``'s decision on a pending image; committed on return.

        Returns
        -------
        decision : dict
            ``adjudication_id``, ``image_id``, ``label`` and ``created_at``.

        Raises
        ------
        InvalidLabel
            ``label`` is not a class, or ``note`` is too long.
        Forbidden
            ``rater`` is not an adjudicator.
        Conflict
            The image is not waiting for this adjudicator's decision.
        """
        if label not in self.classes:
            raise InvalidLabel(f"label must be one of {self.classes}; got {label!r}.")
        if note is not None and len(str(note)) > 2000:
            raise InvalidLabel("note is longer than 2000 characters.")
        with self.db.connect() as conn, transaction(conn):
            rid = self._check_role(conn, rater)
            img = self.images.row(conn, image_id)["id"]
            if img not in self.pending(conn, exclude_rater=rid):
                raise Conflict("this image is not waiting for your adjudication.")
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO adjudications (image_id, rater_id, label, note, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (img, rid, label, note, created),
            )
        return {
            "adjudication_id": cur.lastrowid,
            "image_id": str(img),
            "label": label,
            "created_at": created,
        }

    def agreement(self, conn):
        """Agreement between raters, for the status page.

        Returns
        -------
        agreement : dict
            ``pairs`` (Cohen's kappa, quadratic-weighted kappa, agreement and
            confusion matrix of every pair of raters, see
            :func:`~skal_cxr.datasets._agreement.pairwise_agreement`),
            ``per_class`` (specific agreement of each class, None where
            unused), ``pending`` and ``adjudicated`` (image counts).
        """
        states = self.queue.image_states(conn)
        names = self.raters.names_by_id(conn)
        codes = {c: i for i, c in enumerate(self.classes)}
        ratings = {
            i: {names[r]: codes[v] for r, v in s["labels"].items()}
            for i, s in states.items()
            if len(s["labels"]) >= 2
        }
        per_class = specific_agreement(
            [list(v.values()) for v in ratings.values()], len(self.classes)
        )
        return {
            "pairs": pairwise_agreement(ratings, len(self.classes)),
            "per_class": {
                c: (None if v != v else float(v)) for c, v in zip(self.classes, per_class)
            },
            "pending": len(self.pending(conn, states)),
            "adjudicated": len(self.decided(conn)),
        }

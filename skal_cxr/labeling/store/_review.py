"""Adjudication: images whose raters disagree wait for an adjudicator's decision.

With ``consensus="adjudicate"``, an image whose standing labels are at least
``adjudicate_spread`` classes apart (1: any disagreement) has no consensus,
and does not train the model, until a rater with the adjudicator role has
seen the other raters' labels and notes and decided. Decisions are
append-only rows of the ``adjudications`` table; the latest row of an image
decides; a revision is a new row superseding the decision it replaces. An
adjudicator never decides an image they labeled themselves: such a dispute
goes to another adjudicator, and when there is none it is *stuck*, which
:meth:`Adjudications.stuck` reports (status page, ``/api/status``,
``skal-cxr label status``) with the way out. An adjudicator may defer a
dispute, with a reason: it goes to the end of their queue.
"""

from ...datasets._agreement import disagrees, pairwise_agreement, specific_agreement
from ...exceptions import Conflict, Forbidden, InvalidLabel
from ._db import transaction, utcnow
from ._labels import check_seconds, check_text

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
        """Image ids waiting for a decision, in queue order (not labeled by ``exclude_rater``).

        For an adjudicator (``exclude_rater``), the disputes they deferred
        come last, the longest deferred first.
        """
        states = self.queue.image_states(conn) if states is None else states
        done = self.decided(conn)
        waiting = [
            i
            for i, s in states.items()
            if self.needs(s) and i not in done and exclude_rater not in s["labels"]
        ]
        if exclude_rater is None:
            return waiting
        deferred = self.deferrals(conn, exclude_rater)
        order = {i: n for n, i in enumerate(sorted(deferred, key=lambda i: deferred[i]["id"]))}
        return sorted(waiting, key=lambda i: (i in order, order.get(i, 0)))

    def deferrals(self, conn, rid):
        """``{image_id: row}`` of adjudicator ``rid``'s latest deferral of each image."""
        rows = conn.execute(
            "SELECT * FROM deferrals WHERE id IN (SELECT MAX(id) FROM deferrals "
            "WHERE rater_id = ? GROUP BY image_id)",
            (rid,),
        ).fetchall()
        return {r["image_id"]: r for r in rows}

    def stuck(self, conn, states=None):
        """Disputes no adjudicator may decide (each one labeled them), with the way out.

        Returns
        -------
        stuck : list of dict
            ``image_id``, ``filename`` and ``message`` (one line naming the
            film and the command that adds an adjudicator), in queue order.
        """
        states = self.queue.image_states(conn) if states is None else states
        adjudicators = {
            r[0]: r[1]
            for r in conn.execute("SELECT id, name FROM raters WHERE role = 'adjudicator'")
        }
        files = None
        out = []
        for i in self.pending(conn, states):
            if any(a not in states[i]["labels"] for a in adjudicators):
                continue
            if files is None:
                files = self.images.files(conn)
            filename = files[i][0]
            names = ", ".join(sorted(adjudicators.values()))
            if not adjudicators:
                who = "the project has no adjudicator"
            elif len(adjudicators) == 1:
                who = f"its only adjudicator, {names}, labeled it"
            else:
                who = f"every adjudicator ({names}) labeled it"
            out.append(
                {
                    "image_id": str(i),
                    "filename": filename,
                    "message": f"Dispute on {filename} (image {i}) cannot be adjudicated: "
                    f"{who}; add one with `skal-cxr label add-rater {self.db.file.parent} "
                    "NAME --adjudicator`.",
                }
            )
        return out

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
            ``note``, ``seconds``, ``created_at`` of each standing label),
            ``pending`` (images waiting for this adjudicator, this one included)
            and ``deferred`` (``reason`` and ``created_at`` of this
            adjudicator's latest deferral of it, or None).
        """
        with self.db.connect() as conn:
            rid = self._check_role(conn, rater)
            waiting = self.pending(conn, exclude_rater=rid)
            if not waiting:
                return {"image_id": None, "labels": [], "pending": 0, "deferred": None}
            deferred = self.deferrals(conn, rid).get(waiting[0])
            return {
                "image_id": str(waiting[0]),
                "labels": self.labels_of(conn, waiting[0]),
                "pending": len(waiting),
                "deferred": None
                if deferred is None
                else {"reason": deferred["reason"], "created_at": deferred["created_at"]},
            }

    def decide(self, rater, image_id, label, note=None, seconds=None):
        """Record adjudicator ``rater``'s decision on a pending image; committed on return.

        Parameters
        ----------
        rater : str
            The adjudicator's name.
        image_id : str
            An image waiting for this adjudicator's decision.
        label : str
            The decision, one of the classes.
        note : str or None, default=None
            Why (at most 2000 characters).
        seconds : float or None, default=None
            The time the adjudicator spent on the film (finite, non-negative),
            as the page measures a label's.

        Returns
        -------
        decision : dict
            ``adjudication_id``, ``image_id``, ``label`` and ``created_at``.

        Raises
        ------
        InvalidLabel
            ``label`` is not a class, ``note`` is too long or ``seconds`` is
            not a finite non-negative number.
        Forbidden
            ``rater`` is not an adjudicator.
        Conflict
            The image is not waiting for this adjudicator's decision.
        """
        if label not in self.classes:
            raise InvalidLabel(f"label must be one of {self.classes}; got {label!r}.")
        if note is not None and len(str(note)) > 2000:
            raise InvalidLabel("note is longer than 2000 characters.")
        seconds = check_seconds(seconds)
        with self.db.connect() as conn, transaction(conn):
            rid, img = self._waiting_for(conn, rater, image_id)
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO adjudications (image_id, rater_id, label, note, created_at, "
                "seconds) VALUES (?, ?, ?, ?, ?, ?)",
                (img, rid, label, note, created, seconds),
            )
        return {
            "adjudication_id": cur.lastrowid,
            "image_id": str(img),
            "label": label,
            "created_at": created,
        }

    def _waiting_for(self, conn, rater, image_id):
        """Adjudicator ``rater``'s id and the image's; Conflict unless it waits for him."""
        rid = self._check_role(conn, rater)
        img = self.images.row(conn, image_id)["id"]
        if img not in self.pending(conn, exclude_rater=rid):
            raise Conflict("this image is not waiting for your adjudication.")
        return rid, img

    def defer(self, rater, image_id, reason):
        """Put a pending dispute back, to the end of adjudicator ``rater``'s queue.

        Parameters
        ----------
        rater : str
            The adjudicator's name.
        image_id : str
            A dispute waiting for them.
        reason : str
            Why (at most 2000 characters; kept in the audit trail).

        Returns
        -------
        deferral : dict
            ``deferral_id``, ``image_id``, ``reason`` and ``created_at``.

        Raises
        ------
        InvalidLabel
            No reason, or one too long.
        Forbidden
            ``rater`` is not an adjudicator.
        Conflict
            The image is not waiting for this adjudicator's decision.
        """
        reason = check_text(reason, "reason")
        if not reason or not reason.strip():
            raise InvalidLabel("a deferral needs a reason.")
        if len(reason) > 2000:
            raise InvalidLabel("reason is longer than 2000 characters.")
        with self.db.connect() as conn, transaction(conn):
            rid, img = self._waiting_for(conn, rater, image_id)
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO deferrals (image_id, rater_id, reason, created_at) "
                "VALUES (?, ?, ?, ?)",
                (img, rid, reason, created),
            )
        return {
            "deferral_id": cur.lastrowid,
            "image_id": str(img),
            "reason": reason,
            "created_at": created,
        }

    def revise(self, rater, image_id, label, note=None, seconds=None):
        """Replace the decision on an adjudicated image; the old one stays in the audit trail.

        Any adjudicator who did not label the image may revise it.

        Parameters
        ----------
        rater : str
            The adjudicator's name.
        image_id : str
            An adjudicated image.
        label : str
            The new decision, one of the classes.
        note : str or None, default=None
            Why (at most 2000 characters).
        seconds : float or None, default=None
            The time the adjudicator spent on the film (finite, non-negative).

        Returns
        -------
        revision : dict
            ``adjudication_id``, ``supersedes``, ``image_id``, ``label``,
            ``previous_label`` and ``created_at``.

        Raises
        ------
        InvalidLabel
            ``label`` is not a class or is the standing decision, ``note`` is
            too long, or ``seconds`` is not a finite non-negative number.
        Forbidden
            ``rater`` is not an adjudicator, or labeled the image.
        Conflict
            The image has no decision to revise.
        """
        if label not in self.classes:
            raise InvalidLabel(f"label must be one of {self.classes}; got {label!r}.")
        if note is not None and len(str(note)) > 2000:
            raise InvalidLabel("note is longer than 2000 characters.")
        note = check_text(note, "note")
        seconds = check_seconds(seconds)
        with self.db.connect() as conn, transaction(conn):
            rid = self._check_role(conn, rater)
            img = self.images.row(conn, image_id)["id"]
            old = self.decided(conn).get(img)
            if old is None:
                raise Conflict("this image has no decision to revise.")
            if rid in self.queue.image_states(conn)[img]["labels"]:
                raise Forbidden("you labeled this image: another adjudicator revises it.")
            if old["label"] == label:
                raise InvalidLabel(f"the decision is {label!r} already.")
            created = utcnow()
            cur = conn.execute(
                "INSERT INTO adjudications (image_id, rater_id, label, note, created_at, "
                "supersedes, seconds) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (img, rid, label, note, created, old["id"], seconds),
            )
        return {
            "adjudication_id": cur.lastrowid,
            "supersedes": old["id"],
            "image_id": str(img),
            "label": label,
            "previous_label": old["label"],
            "created_at": created,
        }

    def mine(self, rater):
        """The standing decisions adjudicator ``rater`` made, most recent first.

        Returns
        -------
        decisions : list of dict
            ``adjudication_id``, ``image_id``, ``filename``, ``label``,
            ``note``, ``revised`` (whether it replaced a decision) and
            ``created_at``; empty for a rater who is no adjudicator.
        """
        with self.db.connect() as conn:
            rid = self.raters.id_of(conn, rater)
            files = self.images.files(conn)
            rows = [r for r in self.decided(conn).values() if r["rater_id"] == rid]
        rows.sort(key=lambda r: r["id"], reverse=True)
        return [
            {
                "adjudication_id": r["id"],
                "image_id": str(r["image_id"]),
                "filename": files[r["image_id"]][0],
                "label": r["label"],
                "note": r["note"],
                "revised": r["supersedes"] is not None,
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    def agreement(self, conn):
        """Agreement between raters, for the status page.

        Returns
        -------
        agreement : dict
            ``pairs`` (Cohen's kappa, quadratic-weighted kappa, agreement and
            confusion matrix of every pair of raters, see
            :func:`~skal_cxr.datasets._agreement.pairwise_agreement`),
            ``per_class`` (specific agreement of each class, None where
            unused), ``pending`` and ``adjudicated`` (image counts) and
            ``stuck`` (disputes no adjudicator may decide, see :meth:`stuck`).
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
            "stuck": self.stuck(conn, states),
        }

"""The read side of a labeling project: labels, agreement, progress, rounds, status, exports.

A mixin of :class:`~skal_cxr.labeling.LabelingProject`: each method reads one
database snapshot through the project's collaborators (``db``, ``queue``,
``rater_store``, ``review``, ``label_store``) and hands it to the pure
functions of :mod:`~skal_cxr.labeling.read._status` or to :mod:`~skal_cxr.labeling.read._export`.
"""

from ...exceptions import LabelingError
from ._status import (
    blinded,
    decode_rounds,
    kappa,
    labeled_set,
    progress,
    rater_batch,
    status,
    stopping_signal,
    waiting_for,
)

__all__ = ["ProjectViews"]


class ProjectViews:
    """Labels, agreement, progress, rounds, status and exports of a project (a mixin)."""

    def labels(self):
        """Every label row (append-only history), oldest first, as dicts.

        Withdrawals (undo) are rows too: a ``supersedes`` and no ``label``.

        Returns
        -------
        labels : list of dict
            ``label_id``, ``image_id``, ``relpath``, ``rater``, ``label``,
            ``supersedes``, ``round``, ``queue_kind``, ``seconds``, ``note``
            and ``created_at`` of each row.
        """
        return self.label_store.history()

    def labeled_set(self, conn=None):
        """Images with a consensus label, in queue order: ``(image_ids, codes)``.

        An image counts once it has ``labels_per_image`` standing labels, or
        fewer when every rater has seen it (skips); the consensus follows
        the project's ``consensus`` rule on the classes' severity order.

        Parameters
        ----------
        conn : sqlite3.Connection or None, default=None
            A connection to read in (one snapshot with the caller's other
            reads); ``None`` opens one.

        Returns
        -------
        image_ids : ndarray of shape (n_labeled,), dtype int64
            The images.
        codes : ndarray of shape (n_labeled,), dtype int64
            Their consensus class codes (positions in ``classes``).
        """
        if conn is None:
            with self.db.connect() as conn:
                return self.labeled_set(conn)
        return labeled_set(
            self.queue.image_states(conn),
            self.classes,
            self.config["consensus"],
            self.review,
            self.review.decided(conn),
        )

    def kappa(self, conn=None):
        """Fleiss' kappa over images with ``labels_per_image >= 2`` standing labels.

        Parameters
        ----------
        conn : sqlite3.Connection or None, default=None
            A connection to read in; ``None`` opens one.

        Returns
        -------
        kappa : float or None
            ``None`` with one label per image, before any image has all its
            labels, or when kappa is undefined.
        """
        if conn is None:
            with self.db.connect() as conn:
                return self.kappa(conn)
        return kappa(self.queue.image_states(conn), self.classes, self.config["labels_per_image"])

    def progress(self):
        """Batch and overall progress (as in ``GET /api/next``), the same for every rater.

        Returns
        -------
        progress : dict
            ``round``, ``batch`` (``done``, ``total``) and ``progress``
            (``labeled``, ``queried``, ``total``, ``budget``).
        """
        with self.db.connect() as conn:
            latest = self.queue.latest_round(conn)
            states = self.queue.image_states(conn)
            n_images = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
            settled = len(self.labeled_set(conn)[0])
            awaiting = len(self.review.pending(conn, states)) if self.review.active else 0
        return progress(states, latest, n_images, self.config["budget"], settled, awaiting)

    def rater_progress(self, rater, waiting=False):
        """A rater's own share of the current batch and, when he waits, what for.

        Parameters
        ----------
        rater : str
            The rater's name.
        waiting : bool, default=False
            Whether the rater has nothing to label now.

        Returns
        -------
        mine : dict
            ``done`` (batch images the rater labeled or skipped) and ``total``.
        waiting_for : str or None
            ``"training"``, ``"raters"`` or ``"adjudication"`` when ``waiting``.
        """
        with self.db.connect() as conn:
            rid = self.rater_store.id_of(conn, rater)
            latest = self.queue.latest_round(conn)
            states = self.queue.image_states(conn)
            mine = rater_batch(states, latest, rid, self.config["labels_per_image"])
            if not waiting:
                return mine, None
            n_pending = len(self.review.pending(conn, states)) if self.review.active else 0
        return mine, waiting_for(states, latest, self.training.state, n_pending)

    def status_for(self, rater):
        """``GET /api/status`` as ``rater`` may see it: everything for an adjudicator,
        else his own progress only (no agreement between raters while a study runs).

        Parameters
        ----------
        rater : str
            The rater's name.

        Returns
        -------
        status : dict
            As :meth:`status`; a rater's has only his own ``raters`` entry,
            ``kappa`` and ``agreement`` None and ``blinded`` True.
        """
        role = self.rater_role(rater)
        full = self.status()
        return full if role == "adjudicator" else blinded(full, rater)

    def rounds(self):
        """The round history, like the simulator's records (one dict per round).

        Returns
        -------
        rounds : list of dict
            The rows of the rounds table, with ``queried``, ``scores``,
            ``reserve``, ``class_counts`` and ``stop_predictions`` decoded and
            ``n_queried`` added.
        """
        with self.db.connect() as conn:
            return decode_rounds(self.queue.round_rows(conn))

    def training_status(self):
        """The background training's state, as ``GET /api/status`` shows it.

        Returns
        -------
        training : dict
            ``state``, ``round``, ``progress`` and ``error`` (see
            :meth:`~._training.TrainingState.as_dict`); a failure of a round
            that had not started yet names the round after the latest.
        """
        training = self.training.as_dict()
        error = training.get("error")
        if error is not None and error["round"] is None:
            with self.db.connect() as conn:
                latest = self.queue.latest_round(conn)
            training["error"] = {**error, "round": latest["round"] + 1}
        return training

    def status(self):
        """Everything ``GET /api/status`` shows, as a dict.

        Returns
        -------
        status : dict
            ``project``, ``classes``, ``raters``, ``kappa``, ``rounds``,
            ``training``, ``stopping``, ``agreement`` and ``skipped`` (the
            films a DICOMweb project left out, see ``skipped_films``).
        """
        from ..store._skipped import skipped_films

        with self.db.connect() as conn:
            counts = self.rater_store.label_counts(conn)
            kappa_ = self.kappa(conn)
            n_queued = self.queue.queued_count(conn)
            agreement = self.review.agreement(conn)
        rounds = self.rounds()
        return {
            **status(
                self.name,
                self.classes,
                counts,
                kappa_,
                rounds,
                self.training_status(),
                stopping_signal(self.config, rounds, n_queued, self.n_images()),
            ),
            "agreement": agreement,
            "skipped": skipped_films(self),
        }

    def export(self, path, format="csv"):
        """Write the labels CSV (one row per image with a consensus, every rater's label,
        note and seconds, skips, query round, model and score; read back by
        :func:`~skal_cxr.datasets.load_image_folder`), or every event as JSON lines.

        Parameters
        ----------
        path : path-like
            The file to write (replaced atomically).
        format : {"csv", "jsonl"}, default="csv"

        Returns
        -------
        n : int
            Rows (CSV) or events (JSON lines) written.
        """
        from ._export import WRITERS

        if format not in WRITERS:
            raise LabelingError(f"format must be one of {tuple(WRITERS)}; got {format!r}.")
        return WRITERS[format](self, path)

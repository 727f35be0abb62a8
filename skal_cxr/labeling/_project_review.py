"""Second looks at a labeling project's labels (a mixin of the project).

A mixin of :class:`~skal_cxr.labeling.LabelingProject`: a rater's own labels
and their corrections (through the project's ``label_store``), and the
adjudicator's work on disputed images: the next dispute, a decision, a
deferral, a revision and his standing decisions (through its ``review``).
Labels and decisions are append-only: a correction or a revision adds a row
that supersedes the old one, which stays in the audit trail.
"""

__all__ = ["ProjectReview"]


class ProjectReview:
    """A rater's corrections and an adjudicator's decisions (a mixin)."""

    def rater_labels(self, rater):
        """A rater's standing labels, most recent first (the corrections panel).

        Parameters
        ----------
        rater : str
            The rater's name.

        Returns
        -------
        labels : list of dict
            ``label_id``, ``image_id``, ``filename``, ``label``, ``note``,
            ``scores`` (list of int or None), ``round``, ``corrected`` (whether
            it replaced an earlier label) and ``created_at``.
        """
        return self.label_store.mine(rater)

    def correct_label(self, rater, label_id, label, note=None, scores=None):
        """Replace one of a rater's standing labels; committed on return.

        Parameters
        ----------
        rater : str
            The rater's name.
        label_id : int
            The standing label to correct (any of :meth:`rater_labels`).
        label : str or None
            The new class (None with ``scores``).
        note : str or None, default=None
            Why (kept with the new row).
        scores : list of int or None, default=None
            The new zone scores, with a scoring scheme.

        Returns
        -------
        correction : dict
            As :meth:`~skal_cxr.labeling.store._labels.Labels.correct`: the new
            ``label_id`` and the ``previous_label`` among others.
        """
        return self.label_store.correct(rater, label_id, label, note, scores)

    def next_adjudication(self, rater):
        """The next disputed image for an adjudicator, with the raters' labels and notes.

        Parameters
        ----------
        rater : str
            The adjudicator's name.

        Returns
        -------
        next : dict
            ``image_id`` (str or None), ``labels``, ``pending`` and
            ``deferred`` (see ``GET /api/adjudication/next``).
        """
        return self.review.next_for(rater)

    def adjudicate(self, rater, image_id, label, note=None, seconds=None):
        """Record an adjudicator's decision on a disputed image; committed on return.

        Parameters
        ----------
        rater : str
            The adjudicator's name.
        image_id : str
            An image waiting for adjudication.
        label : str
            The decision, one of the classes.
        note : str or None, default=None
            Why (at most 2000 characters).
        seconds : float or None, default=None
            Time the adjudicator spent on the film (checked as a label's).

        Returns
        -------
        decision : dict
            ``adjudication_id``, ``image_id``, ``label`` and ``created_at``.
        """
        return self.review.decide(rater, image_id, label, note, seconds)

    def defer_adjudication(self, rater, image_id, reason):
        """Put a dispute back, to the end of the adjudicator's queue.

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
            See ``POST /api/adjudication/defer``.
        """
        return self.review.defer(rater, image_id, reason)

    def revise_adjudication(self, rater, image_id, label, note=None, seconds=None):
        """Replace the decision on an adjudicated image; the old one stays in the audit trail.

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
            Time the adjudicator spent on the film (checked as a label's).

        Returns
        -------
        revision : dict
            See ``POST /api/adjudications/revise``.
        """
        return self.review.revise(rater, image_id, label, note, seconds)

    def rater_decisions(self, rater):
        """An adjudicator's standing decisions, most recent first.

        Parameters
        ----------
        rater : str
            The adjudicator's name.

        Returns
        -------
        decisions : list of dict
            ``adjudication_id``, ``image_id``, ``filename``, ``label``,
            ``note``, ``revised`` and ``created_at``; empty for a rater who
            is no adjudicator.
        """
        return self.review.mine(rater)

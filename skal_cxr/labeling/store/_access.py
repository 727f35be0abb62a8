"""Which images a rater's token may read.

A rater reads the images assigned to them (open or labeled), those they
labeled, and, for an adjudicator, those under their review, with the other
films of the same patients (the related films shown for comparison); any
other image is **403**, whatever its id. An unknown id stays **404**.

Films are related only through a real patient id of a bounded group: a
placeholder (:func:`is_placeholder_patient`: ``UNKNOWN``, ``anonymous``,
``0``, an empty value... in any case) links nothing, and neither does an id
shared by more than :data:`MAX_RELATED_FILMS` images (a default value, or a
column that is not a patient id), so that one token never opens the archive.
"""

import re

from ...exceptions import Forbidden

__all__ = ["Access", "MAX_RELATED_FILMS", "is_placeholder_patient", "related_ids"]

#: Most images one patient id may have for its films to be related (shown
#: side by side, readable through one another); an id with more links none.
MAX_RELATED_FILMS = 24

#: Patient ids that name nobody (compared lower-cased, without spaces).
PLACEHOLDER_PATIENTS = frozenset(
    {
        "unknown", "unk", "anonymous", "anon", "anonymized", "none", "null", "nil", "na",
        "n/a", "nan", "missing", "unspecified", "undefined", "patient", "test", "xxx",
        "noid", "no id", "nopatientid",
    }
)  # fmt: skip


def is_placeholder_patient(patient):
    """Whether ``patient`` is a placeholder rather than a person's id.

    ``None``, empty, one of :data:`PLACEHOLDER_PATIENTS` in any case, or made
    only of zeros, dashes, dots, question marks, ``x`` or ``*`` (``0``,
    ``000000``, ``---``, ``?``).
    """
    if patient is None:
        return True
    text = " ".join(str(patient).split()).lower()
    return (
        not text or text in PLACEHOLDER_PATIENTS or re.fullmatch(r"[0x?*.\-_ ]+", text) is not None
    )


def related_ids(conn, image_id):
    """The ids of the films related to ``image_id`` (itself included, in id order).

    Just ``[image_id]`` when its patient is a placeholder or has more than
    :data:`MAX_RELATED_FILMS` images.
    """
    row = conn.execute("SELECT patient FROM images WHERE id = ?", (image_id,)).fetchone()
    if row is None or is_placeholder_patient(row[0]):
        return [image_id]
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM images WHERE patient = ? ORDER BY id LIMIT ?",
            (row[0], MAX_RELATED_FILMS + 1),
        )
    ]
    return ids if len(ids) <= MAX_RELATED_FILMS else [image_id]


class Access:
    """The read rule of a project's images.

    Parameters
    ----------
    db : Database
        The project's database.
    raters : Raters
        Its raters.
    images : ImageStore
        Its images.
    review : Adjudications
        Its adjudications (what is under an adjudicator's review).
    """

    def __init__(self, db, raters, images, review):
        self.db, self.raters, self.images, self.review = db, raters, images, review

    def readable(self, conn, rid, image_id):
        """Whether rater ``rid`` may read image ``image_id`` (an int id), or a related film."""
        if self._own(conn, rid, image_id):
            return True
        return any(
            self._own(conn, rid, other)
            for other in related_ids(conn, image_id)
            if other != image_id
        )

    def _own(self, conn, rid, image_id):
        if conn.execute(
            "SELECT 1 FROM assignments WHERE image_id = ? AND rater_id = ? AND "
            "state IN ('open', 'labeled')",
            (image_id, rid),
        ).fetchone():
            return True
        if conn.execute(
            "SELECT 1 FROM labels WHERE image_id = ? AND rater_id = ? LIMIT 1", (image_id, rid)
        ).fetchone():
            return True
        return self.review.under_review(conn, rid, image_id)

    def check(self, rater, image_id):
        """:class:`~skal_cxr.exceptions.NotFound` for an unknown image, else
        :class:`~skal_cxr.exceptions.Forbidden` unless ``rater`` may read it."""
        with self.db.connect() as conn:
            img = self.images.row(conn, image_id)["id"]
            rid = self.raters.id_of(conn, rater)
            if not self.readable(conn, rid, img):
                raise Forbidden("this image is not assigned to you.")

"""Which images a rater's token may read.

A rater reads the images assigned to them (open or labeled), those they
labeled, and, for an adjudicator, those under their review, with the other
films of the same patients (the related films shown for comparison); any
other image is **403**, whatever its id. An unknown id stays **404**.
"""

from ..exceptions import Forbidden

__all__ = ["Access"]


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
        patient = conn.execute("SELECT patient FROM images WHERE id = ?", (image_id,)).fetchone()[0]
        if patient is None:
            return False
        return any(
            self._own(conn, rid, other)
            for (other,) in conn.execute(
                "SELECT id FROM images WHERE patient = ? AND id != ?", (patient, image_id)
            )
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

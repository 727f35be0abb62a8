"""Giving held images back: a rater's page releases the images it holds when it closes.

``GET /api/next`` (with ``ahead``, for prefetching) hands a rater up to
three images at once, held for them for ``lease_seconds``. When the page
closes (``pagehide``: a closed tab, a reload, a link followed), it asks
``POST /api/release``, and the images it held and did not label are given
back at once: their open assignments are removed, as if never handed out,
so that the next rater who asks gets them (and this rater too, on return).
"""

from ._db import transaction
from ._image_store import parse_image_id

__all__ = ["release"]


def release(project, rater, image_ids=None):
    """Give back the images ``rater`` holds open (all, or those of ``image_ids``).

    Parameters
    ----------
    project : LabelingProject
    rater : str
        The rater's name.
    image_ids : list of str or None, default=None
        The images to give back; ``None``: every image the rater holds open.
        Ids the rater does not hold open are left alone.

    Returns
    -------
    released : list of str
        The images given back, in id order.
    """
    with project.db.connect() as conn, transaction(conn):
        rid = project.rater_store.id_of(conn, rater)
        held = [
            r[0]
            for r in conn.execute(
                "SELECT image_id FROM assignments WHERE rater_id = ? AND state = 'open' "
                "ORDER BY image_id",
                (rid,),
            )
        ]
        if image_ids is not None:
            wanted = {parse_image_id(i) for i in image_ids}
            held = [i for i in held if i in wanted]
        conn.executemany(
            "DELETE FROM assignments WHERE image_id = ? AND rater_id = ? AND state = 'open'",
            [(i, rid) for i in held],
        )
    return [str(i) for i in held]

"""The films a DICOMweb labeling project left out of its pool, each with its reason.

:func:`skipped_films` reads them from the store's ``skipped.json`` (see
``skal_cxr.datasets._dicomweb_skipped``) for ``skal-cxr label status`` and
the app's status; a pull (``_dicomweb_project``) takes again the films refused as too
large once the pixel limit allows them (``_retryable``).
"""

from ...datasets._dicomweb_skipped import skipped_instances
from ...datasets._image_io import max_image_pixels
from .._settings import DICOM_DIR

__all__ = ["skipped_films"]


def _retryable(skipped):
    """The skipped films a pull takes again: too large ones the pixel limit now allows."""
    limit = max_image_pixels()
    return {
        sop
        for sop, entry in skipped.items()
        if entry.get("kind") == "too large" and entry.get("pixels", limit + 1) <= limit
    }


def skipped_films(project):
    """The films of a DICOMweb project left out of its pool, each with its reason.

    Parameters
    ----------
    project : LabelingProject
        Any project (an empty list when it is not a DICOMweb project).

    Returns
    -------
    skipped : list of dict
        ``{"sop", "kind", "reason"}`` per film, by SOP Instance UID; ``kind``
        is ``"too large"`` (over the pixel limit: a later pull with a
        raised limit takes it), ``"undecodable"``, ``"no image"`` or
        ``"vanished"`` (gone from the server).
    """
    if not project.config.get("dicomweb"):
        return []
    skipped = skipped_instances(project.path / DICOM_DIR)
    return [
        {"sop": sop, "kind": entry["kind"], "reason": entry["reason"]}
        for sop, entry in sorted(skipped.items())
    ]

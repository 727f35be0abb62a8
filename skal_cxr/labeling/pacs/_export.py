"""Labels out to a PACS: one DICOM Structured Report per labeled image.

:func:`export_dicom` writes the reports (see ``_dicom_sr``) and may send
them with STOW-RS; for a project that keeps hashed patient ids, the reports
sent take the PACS's own patient attributes (:class:`_PatientLookup`), held
in memory only.
"""

import functools
import json

from ...datasets import dicomweb_session
from ...exceptions import DicomwebError, LabelingError

__all__ = ["export_dicom"]


def _standing_raters(project):
    """``{image_id: [rater, ...]}``: who holds a standing label on each image."""
    latest = {}
    for row in project.labels():  # oldest first: the last row per (image, rater) stands
        latest[(row["image_id"], row["rater"])] = row["label"]
    out = {}
    for (image_id, rater), label in latest.items():
        if label is not None:
            out.setdefault(image_id, []).append(rater)
    return out


def _model_version(project):
    from ..._version import __version__

    trained = [r["round"] for r in project.rounds() if r.get("fit_time") is not None]
    model = f"round {max(trained)}" if trained else "no model yet (cold start)"
    return f"skal-cxr {__version__}, {project.name} {model}"


def export_dicom(
    project,
    out_dir,
    *,
    stow=None,
    auth=None,
    credentials_file=None,
    credentials_env=None,
    ca_bundle=None,
):
    """Write one DICOM Structured Report per labeled image; optionally send them.

    Each report (see ``skal_cxr.labeling.pacs._dicom_sr``) carries the image's
    consensus class as a coded finding, references the image by its Study,
    Series and SOP Instance UIDs, names the raters whose labels stand as
    observers, and the model version as a text item. The images must be
    DICOM files (a DICOMweb project, or a folder of DICOM files).

    Parameters
    ----------
    project : LabelingProject
        The project.
    out_dir : path-like
        The folder the reports are written to, ``<SOP Instance UID>.dcm``
        (created), readable by their owner only.
    stow : str, default=None
        A DICOMweb root to send the reports to with STOW-RS (the project's
        own server, usually). When the project keeps hashed patient ids, the
        reports sent take the patient attributes the server holds for their
        study (QIDO-RS), so that the PACS files each report with its
        patient; those are held in memory only: the reports written to
        ``out_dir`` carry the hashed ids, like the rest of the project.
    auth : {None, "basic", "bearer"}, default=None
        How to authenticate with ``stow``; ``None`` takes a DICOMweb
        project's own scheme.
    credentials_file : path-like, default=None
        A file holding the secret.
    credentials_env : str, default=None
        An environment variable holding it.
    ca_bundle : path-like, default=None
        Certificate authorities to trust.

    Returns
    -------
    n_written : int
        Reports written.
    n_stored : int
        Reports the server stored (0 without ``stow``).
    """
    import pydicom

    from ..read._export import zone_score_means
    from ._dicom_sr import make_label_sr, stow_srs, write_sr

    source = project.config.get("dicomweb") or {}
    session = None
    if stow is not None:
        scheme = auth if auth is not None else source.get("auth")
        try:
            session = dicomweb_session(
                scheme,
                credentials_file=credentials_file,
                credentials_env=credentials_env,
                ca_bundle=ca_bundle,
            )
        except DicomwebError as exc:
            raise LabelingError(str(exc)) from None
    ids, codes = project.labeled_set()
    raters = _standing_raters(project)
    version = _model_version(project)
    zone_scores = zone_score_means(project)
    lookup = _PatientLookup(stow, session) if stow and source.get("hash_patient_ids") else None
    reports, sent = [], []
    for image_id, code in zip(ids.tolist(), codes.tolist()):
        path = project.image_path(str(image_id))
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError):
            header = None
        needed = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")
        if header is None or not all(k in header for k in needed):
            raise LabelingError(
                f"image {image_id} ({path.name}) is not a DICOM instance; "
                "export --to-dicom needs DICOM images."
            ) from None
        report = functools.partial(
            make_label_sr,
            header,
            project.classes[code],
            code,
            raters=raters.get(str(image_id), []) or ["unknown"],
            model_version=version,
            project=project.name,
            zone_scores=zone_scores.get(image_id),
        )
        reports.append(report())  # the stored header's patient: hashed when hashing
        if lookup is not None:  # the PACS's own patient, for the server only
            sent.append(report(patient=lookup(header.StudyInstanceUID)))
    for sr in reports:
        write_sr(sr, out_dir, mode=0o600)
    stored = 0
    if stow is not None and reports:
        try:
            stored = stow_srs(stow, sent or reports, session)
        except DicomwebError as exc:
            raise LabelingError(str(exc)) from None
    return len(reports), stored


class _PatientLookup:
    """The PACS's patient attributes of a study (QIDO-RS), kept in memory only."""

    _FIELDS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex")

    def __init__(self, url, session):
        from ...datasets._dicomweb import check_url, make_client

        self.url = check_url(url, session)
        self.client = make_client(self.url, session)
        self.found = {}

    def __call__(self, study_uid):
        import pydicom

        from ...datasets._dicomweb import describe_failure

        if study_uid not in self.found:
            try:
                studies = self.client.search_for_studies(
                    search_filters={"StudyInstanceUID": study_uid}, fields=list(self._FIELDS)
                )
            except Exception as exc:  # requests' and the client's failures
                raise LabelingError(describe_failure(self.url, exc)) from None
            if not studies:
                raise LabelingError(
                    f"study {study_uid} is not on {self.url}; its report "
                    "cannot be filed with its patient."
                )
            ds = pydicom.Dataset.from_json(json.dumps(studies[0]))
            self.found[study_uid] = {k: ds.get(k, "") for k in self._FIELDS}
        return self.found[study_uid]

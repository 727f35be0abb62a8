"""Labels as DICOM Structured Reports, written to a folder or sent back with STOW-RS.

One Comprehensive SR (made with ``highdicom``) per labeled image, in the
image's study, in a series of its own. Its content tree::

    CONTAINER  (LN 18748-4) Diagnostic Imaging Report
      HAS OBS CONTEXT  Observer Type = Person, Person Observer Name = <rater>^   (each rater)
      HAS OBS CONTEXT  Observer Type = Device, Device Observer UID / Name = skal-cxr
      CONTAINS  CODE (DCM 121071) Finding = (<k>, 99SKALCXR, "<class name>")
        INFERRED FROM  IMAGE (SCT 260753009) Source = the image's SOP Class / Instance UIDs
      CONTAINS  TEXT (DCM 111001) Algorithm Name = skal-cxr <estimator>
      CONTAINS  TEXT (DCM 111003) Algorithm Version = <model version>
      CONTAINS  NUM (<scheme>-<zone>, 99SKALCXR, "<scheme> score, <zone>") = <score> {score}
        INFERRED FROM  IMAGE (SCT 260753009) Source = the image        (each zone, when scored)
      CONTAINS  NUM (<scheme>-total, 99SKALCXR, "<scheme> score, total") = <total> {score}

``k`` is the class's index in the project's class list and ``99SKALCXR`` a
private coding scheme (DICOM keeps designators beginning with ``99`` for
local codes). The image is also listed in the SR's evidence (Current
Requested Procedure Evidence Sequence), and the patient and study
attributes are the image's, so that a PACS files the report beside it.
A project with zone scores (Brixia, RALE) adds one NUMERIC item per zone and
one for the total, in UCUM's unit ``{score}``: the mean of the raters'
scores.
"""

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["CODING_SCHEME", "dciodvfy_errors", "make_label_sr", "stow_srs", "write_sr"]

CODING_SCHEME = "99SKALCXR"
_DEVICE_UID = "1.2.826.0.1.3680043.8.498.1"  # a fixed UID standing for the skal-cxr device
_EXPORT_SERIES = 9901


def _uid(*parts):
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["skal-cxr label SR", *map(str, parts)])


def make_label_sr(
    image,
    label,
    label_index,
    *,
    raters,
    model_version,
    algorithm_name="skal-cxr MCDropoutCNN",
    patient=None,
    project="skal-cxr",
    zone_scores=None,
):
    """The Structured Report of one image's consensus label.

    Parameters
    ----------
    image : pydicom.Dataset
        The labeled image's header (pixels are not needed): its Study,
        Series and SOP Instance UIDs, SOP Class UID and patient attributes.
    label : str
        The consensus class name.
    label_index : int
        Its index in the project's classes (the code value).
    raters : list of str
        The raters whose labels made the consensus (one observer each).
    model_version : str
        The version of the model of the labeling round (a text item).
    algorithm_name : str, default="skal-cxr MCDropoutCNN"
        The text of the Algorithm Name item.
    patient : dict, default=None
        Patient attributes to put in the report instead of the image's
        (``{"PatientID": ..., "PatientName": ...}``), e.g. the PACS's own
        when the project keeps only hashed patient ids.
    project : str, default="skal-cxr"
        The project's name: it seeds the report's UIDs (with the image's
        UID, the label, the raters and the model version), so that exporting
        the same labels again gives the same reports.
    zone_scores : (ScoringScheme, list of float, float), default=None
        The scheme, each zone's score and the total (the mean of the
        raters'), written as NUMERIC items; None for a project without zone
        scores.

    Returns
    -------
    sr : highdicom.sr.ComprehensiveSR
        A pydicom Dataset.
    """
    import pydicom
    from highdicom.sr import (
        CodeContentItem,
        CodedConcept,
        ComprehensiveSR,
        ContainerContentItem,
        ContentSequence,
        DeviceObserverIdentifyingAttributes,
        ImageContentItem,
        NumContentItem,
        ObserverContext,
        PersonObserverIdentifyingAttributes,
        RelationshipTypeValues,
        TextContentItem,
    )
    from pydicom.sr.codedict import codes

    if not raters:
        raise ValueError("a label report needs at least one rater.")
    evidence = pydicom.Dataset()
    for keyword in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
        "Modality",
    ):
        if keyword in image:
            setattr(evidence, keyword, image.get(keyword))
    for keyword, value in (patient or {}).items():
        setattr(evidence, keyword, value)
    for keyword in (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyDate",
        "StudyTime",
    ):
        if keyword not in evidence:
            setattr(evidence, keyword, None)  # Type 2: present, maybe empty

    contains, inferred = RelationshipTypeValues.CONTAINS, RelationshipTypeValues.INFERRED_FROM
    items = []
    for rater in raters:
        items.extend(
            ObserverContext(
                observer_type=codes.DCM.Person,
                observer_identifying_attributes=PersonObserverIdentifyingAttributes(
                    name=_person_name(rater)
                ),
            )
        )
    items.extend(
        ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                uid=_DEVICE_UID, name="skal-cxr", model_name=str(algorithm_name)[:64]
            ),
        )
    )
    finding = CodeContentItem(
        name=codes.DCM.Finding,
        value=CodedConcept(
            value=str(int(label_index)), scheme_designator=CODING_SCHEME, meaning=str(label)[:64]
        ),
        relationship_type=contains,
    )
    finding.ContentSequence = ContentSequence(
        [
            ImageContentItem(
                name=codes.SCT.Source,
                referenced_sop_class_uid=image.SOPClassUID,
                referenced_sop_instance_uid=image.SOPInstanceUID,
                relationship_type=inferred,
            )
        ]
    )
    items.append(finding)
    items.append(
        TextContentItem(
            name=codes.DCM.AlgorithmName, value=str(algorithm_name), relationship_type=contains
        )
    )
    items.append(
        TextContentItem(
            name=codes.DCM.AlgorithmVersion, value=str(model_version), relationship_type=contains
        )
    )
    if zone_scores is not None:
        items.extend(_score_items(zone_scores, image, NumContentItem, CodedConcept, codes))
    root = ContainerContentItem(name=codes.LN.DiagnosticImagingReport)
    root.ContentSequence = ContentSequence(items)

    seed = (project, image.SOPInstanceUID, label, label_index, *raters, model_version)
    if zone_scores is not None:
        seed += (zone_scores[0].name, *map(repr, zone_scores[1]), repr(zone_scores[2]))
    sr = ComprehensiveSR(
        evidence=[evidence],
        content=root,
        series_instance_uid=_uid("series", project, image.StudyInstanceUID),
        series_number=_EXPORT_SERIES,
        sop_instance_uid=_uid("instance", *seed),
        instance_number=1,
        manufacturer="skal-cxr",
        is_complete=True,
        is_final=False,
        is_verified=False,
        record_evidence=True,
    )
    sr.SeriesDescription = "skal-cxr labels"
    return sr


def _score_items(zone_scores, image, NumContentItem, CodedConcept, codes):
    """The NUMERIC items of a film's zone scores and total (see the module's docstring)."""
    from highdicom.sr import ContentSequence, ImageContentItem, RelationshipTypeValues

    scheme, zones, total = zone_scores
    unit = CodedConcept(value="{score}", scheme_designator="UCUM", meaning="score")
    title = scheme.title.replace(" score", "")
    items = []
    for zone, value in [*zip(scheme.zones, zones), (None, total)]:
        key = "total" if zone is None else zone.key
        meaning = f"{title} score, " + ("total" if zone is None else f"{key}: {zone.meaning}")
        item = NumContentItem(
            name=CodedConcept(
                value=f"{scheme.name}-{key}", scheme_designator=CODING_SCHEME, meaning=meaning[:64]
            ),
            value=float(value),
            unit=unit,
            relationship_type=RelationshipTypeValues.CONTAINS,
        )
        if zone is not None:
            item.ContentSequence = ContentSequence(
                [
                    ImageContentItem(
                        name=codes.SCT.Source,
                        referenced_sop_class_uid=image.SOPClassUID,
                        referenced_sop_instance_uid=image.SOPInstanceUID,
                        relationship_type=RelationshipTypeValues.INFERRED_FROM,
                    )
                ]
            )
        items.append(item)
    return items


def _person_name(rater):
    """A rater's name as a DICOM person name (``^`` and ``=`` have meanings there)."""
    name = str(rater).replace("^", " ").replace("=", " ").replace("\\", " ").strip()
    return (name[:63] or "rater") + "^"  # one component: the family name


def write_sr(sr, folder, mode=None):
    """Write a report to ``folder/<SOP Instance UID>.dcm`` atomically; return the path.

    Parameters
    ----------
    sr : pydicom.Dataset
        The report.
    folder : path-like
        Where (created).
    mode : int, default=None
        The file's permissions (``0o600``: its owner's only); ``None``
        leaves them to the umask.

    Returns
    -------
    path : pathlib.Path
    """
    from ..._atomic import replacing

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sr.SOPInstanceUID}.dcm"
    with replacing(path, mode=mode) as tmp:
        try:
            sr.save_as(tmp, enforce_file_format=True)
        except TypeError:  # pydicom < 3
            sr.save_as(tmp, write_like_original=False)
    return path


def stow_srs(url, reports, session, *, timeout=60, batch_size=50):
    """Send reports to a DICOMweb server with STOW-RS; return how many it stored.

    Parameters
    ----------
    url : str
        The DICOMweb root.
    reports : list of pydicom.Dataset
        The reports.
    session : requests.Session
        Carrying the credentials (see :func:`skal_cxr.datasets.dicomweb_session`).
    timeout : float, default=60
        Seconds to wait for each answer.
    batch_size : int, default=50
        Reports per STOW-RS request.

    Returns
    -------
    n_stored : int

    Raises
    ------
    skal_cxr.datasets.DicomwebError
        With one line, when the server refuses a request or some reports.
    """
    from ...datasets._dicomweb import (
        DicomwebError,
        check_url,
        describe_failure,
        make_client,
    )

    url = check_url(url, session)
    client = make_client(url, session, timeout)
    stored = 0
    for start in range(0, len(reports), batch_size):
        batch = reports[start : start + batch_size]
        try:
            answer = client.store_instances(batch)
        except Exception as exc:  # requests' and the client's failures
            raise DicomwebError(
                f"{describe_failure(url, exc).rstrip('.')}; {stored} of "
                f"{len(reports)} reports were stored."
            ) from None
        failed = len(answer.get("FailedSOPSequence", []) or []) if answer is not None else 0
        if failed:
            raise DicomwebError(
                f"DICOMweb server {url} refused {failed} of {len(batch)} "
                f"reports; {stored} of {len(reports)} were stored."
            )
        stored += len(batch)
    return stored


def dciodvfy_errors(path):
    """The errors Debian's ``dciodvfy`` (dicom3tools) finds in a DICOM file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    errors : list of str or None
        The ``Error`` lines (empty: valid); ``None`` when dciodvfy is not
        installed.
    """
    tool = shutil.which("dciodvfy")
    if tool is None:
        return None
    run = subprocess.run(
        [tool, "-new", os.fspath(path)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (run.stdout + run.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]

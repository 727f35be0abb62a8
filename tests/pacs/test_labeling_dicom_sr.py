"""Label reports as DICOM SR: content known answers, validation, STOW-RS round trip."""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")
pytest.importorskip("dicomweb_client")

from _orthanc import make_cr_films  # noqa: E402

from skal_cxr.datasets import DicomwebError, dicomweb_session  # noqa: E402
from skal_cxr.labeling.pacs._dicom_sr import (  # noqa: E402
    CODING_SCHEME,
    dciodvfy_errors,
    make_label_sr,
    stow_srs,
    write_sr,
)

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


@pytest.fixture(scope="module")
def films():
    return make_cr_films(
        np.linspace(0, 1, 4 * 64).reshape(4, 8, 8),
        n_patients=2,
        studies_per_patient=2,
        random_state=3,
    )


def _items(sr):
    return {
        item.ConceptNameCodeSequence[0].CodeMeaning: item
        for item in sr.ContentSequence
        if item.ValueType != "PNAME"
    }


def test_report_content_known_answers(films, tmp_path):
    image = films[1]
    path = write_sr(
        make_label_sr(image, "moderate", 1, raters=["alice", "bob^x"], model_version="round-3"),
        tmp_path,
    )
    sr = pydicom.dcmread(path)
    assert path.name == f"{sr.SOPInstanceUID}.dcm"
    assert (sr.SOPClassUID, sr.Modality) == (COMPREHENSIVE_SR, "SR")
    assert (sr.StudyInstanceUID, sr.PatientID, str(sr.PatientName)) == (
        image.StudyInstanceUID,
        "PAT0000",
        "DOE^PAT0000",
    )
    assert sr.SeriesInstanceUID != image.SeriesInstanceUID
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    observers = [str(item.PersonName) for item in sr.ContentSequence if item.ValueType == "PNAME"]
    assert observers == ["alice^", "bob x^"]
    items = _items(sr)
    finding = items["Finding"]
    assert finding.RelationshipType == "CONTAINS"
    code = finding.ConceptCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        "1",
        CODING_SCHEME,
        "moderate",
    )
    source = finding.ContentSequence[0]
    assert source.RelationshipType == "INFERRED FROM"
    ref = source.ReferencedSOPSequence[0]
    assert (ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID) == (
        image.SOPClassUID,
        image.SOPInstanceUID,
    )
    assert items["Algorithm Version"].TextValue == "round-3"
    assert items["Algorithm Name"].TextValue == "skal-cxr MCDropoutCNN"
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == image.StudyInstanceUID
    assert (
        evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        == image.SOPInstanceUID
    )


def test_report_uids_follow_the_labels(films):
    def make(label, i, version="r1"):
        return make_label_sr(films[0], label, i, raters=["alice"], model_version=version)

    assert make("normal", 0).SOPInstanceUID == make("normal", 0).SOPInstanceUID
    assert make("normal", 0).SOPInstanceUID != make("severe", 2).SOPInstanceUID
    assert make("normal", 0).SOPInstanceUID != make("normal", 0, "r2").SOPInstanceUID
    # the reports of one study share their series
    assert make("normal", 0).SeriesInstanceUID == make("severe", 2).SeriesInstanceUID
    other = make_label_sr(films[2], "normal", 0, raters=["alice"], model_version="r1")
    assert other.SeriesInstanceUID != make("normal", 0).SeriesInstanceUID
    with pytest.raises(ValueError, match="at least one rater"):
        make_label_sr(films[0], "normal", 0, raters=[], model_version="r1")


def test_patient_attributes_can_be_given(films):
    sr = make_label_sr(
        films[0],
        "normal",
        0,
        raters=["alice"],
        model_version="r1",
        patient={"PatientID": "MRN-7", "PatientName": "ROE^JANE"},
    )
    assert (sr.PatientID, str(sr.PatientName)) == ("MRN-7", "ROE^JANE")


def test_reports_validate_with_dciodvfy(films, tmp_path):
    path = write_sr(
        make_label_sr(films[3], "severe", 2, raters=["alice", "carol"], model_version="round-1"),
        tmp_path,
    )
    errors = dciodvfy_errors(path)
    if errors is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed")
    assert errors == []


def test_stow_round_trip(orthanc, films, tmp_path):
    orthanc.upload(films)
    reports = [
        make_label_sr(
            ds,
            "normal" if i % 2 else "severe",
            0 if i % 2 else 2,
            raters=["alice"],
            model_version="r1",
        )
        for i, ds in enumerate(films)
    ]
    import requests

    session = requests.Session()
    session.auth = orthanc.auth
    assert stow_srs(orthanc.dicomweb_url, reports, session, batch_size=3) == 4
    found = requests.get(
        orthanc.dicomweb_url + "/instances",
        params={"Modality": "SR"},
        auth=orthanc.auth,
        timeout=10,
    ).json()
    assert {f["00080018"]["Value"][0] for f in found} == {r.SOPInstanceUID for r in reports}
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(orthanc.dicomweb_url, session=session)
    back = client.retrieve_instance(
        reports[0].StudyInstanceUID, reports[0].SeriesInstanceUID, reports[0].SOPInstanceUID
    )
    assert back.StudyInstanceUID == films[0].StudyInstanceUID
    assert _items(back)["Finding"].ConceptCodeSequence[0].CodeMeaning == "severe"
    assert orthanc.count("studies") == 4  # filed in the images' studies, none new


def test_stow_with_wrong_credentials(orthanc, films, monkeypatch):
    monkeypatch.setenv("PACS_SECRET", f"{orthanc.username}:wrong")
    session = dicomweb_session("basic", credentials_env="PACS_SECRET")
    report = make_label_sr(films[0], "normal", 0, raters=["alice"], model_version="r1")
    with pytest.raises(DicomwebError, match="refused the credentials") as info:
        stow_srs(orthanc.dicomweb_url, [report], session)
    assert "\n" not in str(info.value) and "0 of 1 reports" in str(info.value)

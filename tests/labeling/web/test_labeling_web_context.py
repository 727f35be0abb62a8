"""Context for a reading: related films of the same patient, and the DICOM header panel."""

import numpy as np
import pytest
from _labeling_fakes import CLASSES, TINY

from skal_cxr.exceptions import Forbidden
from skal_cxr.labeling import init_project


@pytest.fixture
def followups(tmp_path, phantom_folder):
    """A project over the phantoms listed in a CSV with patient and date columns."""
    folder = phantom_folder[0]
    lines = ["filename,patient,date"]
    # patient p1 has three films, out of date order in the CSV; the rest one each
    visits = {0: ("p1", "2024-03-01"), 1: ("p1", "2023-11-20"), 2: ("p1", "2024-06-15")}
    for i in range(12):
        patient, date = visits.get(i, (f"q{i}", "2024-01-01"))
        lines.append(f"im{i:03d}.png,{patient},{date}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    return init_project(
        tmp_path / "project",
        folder,
        CLASSES,
        csv=tmp_path / "list.csv",
        group_column="patient",
        date_column="date",
        **{**TINY, "query_size": 5},
    )


def test_related_films_are_oldest_to_newest(followups):
    films = followups.related_images("1")
    assert [(f["image_id"], f["date"], f["current"]) for f in films] == [
        ("2", "2023-11-20", False),
        ("1", "2024-03-01", True),
        ("3", "2024-06-15", False),
    ]
    assert followups.related_images("5") == [
        {"image_id": "5", "date": "2024-01-01", "current": True}
    ]


def test_a_rater_reads_the_related_films_of_their_images(followups):
    followups.add_rater("alice")
    shown = followups.next_image("alice")["image_id"]
    table = {i: rel for i, rel, _, _ in followups.image_table()}
    followups.check_access("alice", shown)
    related = [f["image_id"] for f in followups.related_images(shown)]
    for image_id in related:
        followups.check_access("alice", image_id)  # no error: readable
    unrelated = next(i for i in table if i not in related)
    with pytest.raises(Forbidden):
        followups.check_access("alice", unrelated)


def test_header_panel_shows_the_configured_dicom_tags(tmp_path, write_dicom):
    folder = tmp_path / "dicoms"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (patient, date) in enumerate(
        [("P7", "20240301"), ("P7", "20231120"), ("P8", "20240101")]
    ):
        write_dicom(
            folder / f"f{i}.dcm",
            rng.integers(0, 4096, (16, 16)),
            bits_stored=12,
            PatientID=patient,
            StudyDate=date,
            ViewPosition="PA",
            PatientSex="F",
            PatientAge="067Y",
            PatientName="Doe^Jane",
        )
    project = init_project(
        tmp_path / "project",
        folder,
        CLASSES,
        header_tags=["ViewPosition", "PatientAge", "PatientName", "Modality", "BodyPartExamined"],
        **{**TINY, "query_size": 2},
    )
    tags = project.image_header("1", project.config["header_tags"])
    assert [(t["keyword"], t["value"]) for t in tags] == [
        ("ViewPosition", "PA"),
        ("PatientAge", "067Y"),
        ("PatientName", "Doe^Jane"),
        ("Modality", "DX"),
    ]  # absent tags are left out
    assert tags[0]["name"] == "View Position"
    # the DICOM files give the patient and study date: related films without a CSV
    assert [(f["image_id"], f["date"]) for f in project.related_images("1")] == [
        ("2", "20231120"),
        ("1", "20240301"),
    ]

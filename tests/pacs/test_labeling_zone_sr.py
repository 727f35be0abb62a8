"""Zone scores in the label reports: NUMERIC items with a code per zone, validated."""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from _orthanc import make_cr_films  # noqa: E402

from skal_cxr.labeling._scoring import check_scoring, scheme_of  # noqa: E402
from skal_cxr.labeling.pacs._dicom_sr import (  # noqa: E402
    CODING_SCHEME,
    dciodvfy_errors,
    make_label_sr,
    write_sr,
)

CLASSES = ["mild", "moderate", "severe"]


@pytest.fixture(scope="module")
def film():
    return make_cr_films(np.zeros((1, 8, 8)), n_patients=1, studies_per_patient=1)[0]


def _numeric(sr):
    return {
        item.ConceptNameCodeSequence[0].CodeValue: item
        for item in sr.ContentSequence
        if item.ValueType == "NUM"
    }


@pytest.mark.parametrize(
    "name, scores, zones, total",
    [
        ("brixia", [0, 1, 2, 3, 1, 0], {"A": 0, "B": 1, "C": 2, "D": 3, "E": 1, "F": 0}, 7),
        ("rale", [4, 3, 0, 1, 2, 2, 1, 1], {"RU": 12, "RL": 0, "LU": 4, "LL": 1}, 17),
    ],
)
def test_zone_scores_are_numeric_items_that_validate(film, tmp_path, name, scores, zones, total):
    scheme = scheme_of({"scoring": check_scoring(name, "7,12", CLASSES)})
    sr = make_label_sr(
        film,
        "moderate",
        1,
        raters=["alice"],
        model_version="r1",
        zone_scores=(scheme, scheme.zone_scores(scores), total),
    )
    path = write_sr(sr, tmp_path)
    back = pydicom.dcmread(path)
    items = _numeric(back)
    assert set(items) == {f"{name}-{z}" for z in zones} | {f"{name}-total"}
    for key, value in zones.items():
        item = items[f"{name}-{key}"]
        code = item.ConceptNameCodeSequence[0]
        assert code.CodingSchemeDesignator == CODING_SCHEME
        assert key in code.CodeMeaning or "zone" in code.CodeMeaning
        measured = item.MeasuredValueSequence[0]
        assert float(measured.NumericValue) == value
        unit = measured.MeasurementUnitsCodeSequence[0]
        assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("{score}", "UCUM")
    assert float(items[f"{name}-total"].MeasuredValueSequence[0].NumericValue) == total
    errors = dciodvfy_errors(path)
    if errors is None:
        pytest.skip("dciodvfy (Debian's dicom3tools) is not installed")
    assert errors == []


def test_export_dicom_carries_the_mean_zone_scores_of_the_raters(tmp_path):
    from skal_cxr.labeling import export_dicom, init_project

    folder = tmp_path / "films"
    folder.mkdir()
    rng = np.random.default_rng(0)
    films = make_cr_films(rng.integers(0, 255, (6, 16, 16), dtype=np.uint8), 6, 1)
    for i, ds in enumerate(films):
        ds.save_as(folder / f"film{i}.dcm", enforce_file_format=True)
    project = init_project(
        tmp_path / "p",
        folder,
        CLASSES,
        labels_per_image=2,
        query_size=2,
        image_size=16,
        initial_size=2,
        scoring="rale",
        bins="10,20",
    )
    for name in ("alice", "bob"):
        project.add_rater(name)
    image_id = project.next_image("alice")["image_id"]
    project.submit_label("alice", image_id, None, scores=[4, 3, 0, 1, 2, 2, 1, 1])  # 12 0 4 1
    assert project.next_image("bob")["image_id"] == image_id
    project.submit_label("bob", image_id, None, scores=[4, 3, 1, 1, 1, 2, 1, 1])  # 12 1 2 1
    n, _ = export_dicom(project, tmp_path / "out")
    assert n == 1
    (path,) = (tmp_path / "out").glob("*.dcm")
    items = _numeric(pydicom.dcmread(path))
    means = {k: float(v.MeasuredValueSequence[0].NumericValue) for k, v in items.items()}
    assert means == {
        "rale-RU": 12.0,
        "rale-RL": 0.5,
        "rale-LU": 3.0,
        "rale-LL": 1.0,
        "rale-total": 16.5,
    }

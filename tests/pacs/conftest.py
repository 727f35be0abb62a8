"""Fixtures of the PACS tests: a real Orthanc on loopback, and CR films for it.

Every test that takes ``orthanc`` gets its own fresh, empty server (it starts
in a fraction of a second), stopped at teardown. Tests skip, saying why,
when Orthanc, its DICOMweb plugin or the DICOM libraries are missing; CI
installs them (``.ci/run``).
"""

from pathlib import Path

import pytest
from _orthanc import OrthancServer, make_cr_films, orthanc_missing


def pytest_collection_modifyitems(config, items):
    """Every test here starts a real Orthanc (2.5 s to stop): CI runs them, the fast tier not."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


def _skip_without_dicom_stack():
    reason = orthanc_missing()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("pydicom")
    pytest.importorskip("dicomweb_client")


@pytest.fixture
def orthanc(tmp_path_factory):
    """A running, empty Orthanc with DICOMweb, authentication on; stopped at teardown."""
    _skip_without_dicom_stack()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def capped_orthanc(tmp_path_factory):
    """An Orthanc that answers at most 7 results to any search (and cannot page past them)."""
    _skip_without_dicom_stack()
    server = OrthancServer(
        tmp_path_factory.mktemp("orthanc"), LimitFindInstances=7, LimitFindResults=7
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def phantom_films():
    """``(datasets, classes)``: 8 patients x 2 studies of 32x32 CR phantoms."""
    pytest.importorskip("pydicom")
    from skal_cxr.datasets import make_cxr_phantoms

    X, y = make_cxr_phantoms(16, image_size=32, n_classes=3, random_state=0)
    return make_cr_films(X, n_patients=8, studies_per_patient=2), y


@pytest.fixture(scope="session")
def pneumonia_films(pneumoniamnist):
    """``(datasets, labels)``: 6 patients x 3 studies of PneumoniaMNIST films as CR."""
    pytest.importorskip("pydicom")
    X, y = pneumoniamnist["train_images"][:18], pneumoniamnist["train_labels"][:18].ravel()
    return make_cr_films(
        X, n_patients=6, studies_per_patient=3, patient_prefix="PNM", random_state=1
    ), y

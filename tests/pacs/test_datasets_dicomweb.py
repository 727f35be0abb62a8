"""The DICOMweb pool against a real Orthanc: query, paging, credentials, resume, increments."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")
pytest.importorskip("dicomweb_client")

from skal_cxr.datasets import (
    DicomwebError,
    DicomwebPool,
    _dicomweb,
    _dicomweb_search,
    _dicomweb_store,
    build_dicomweb_cache,
    dicomweb_session,
    fetch_dicomweb,
    parse_dicomweb_query,
)

HERE = Path(__file__).parent


@pytest.fixture
def secret_file(tmp_path, orthanc):
    path = tmp_path / "orthanc.secret"
    path.write_text(f"{orthanc.username}:{orthanc.password}\n")
    path.chmod(0o600)
    return path


def _fetch(orthanc, secret_file, store, query=None, **options):
    return fetch_dicomweb(
        orthanc.dicomweb_url, store, query, auth="basic", credentials_file=secret_file, **options
    )


# --- query strings -----------------------------------------------------------------


def test_query_lists_become_one_search_per_value():
    assert parse_dicomweb_query("Modality=CR,DX&StudyDate=20240101-20241231") == [
        {"Modality": "CR", "StudyDate": "20240101-20241231"},
        {"Modality": "DX", "StudyDate": "20240101-20241231"},
    ]
    assert parse_dicomweb_query(None) == [{}] == parse_dicomweb_query("  ")
    assert parse_dicomweb_query("00080060=CR") == [{"Modality": "CR"}]
    # UID list matching is standard QIDO-RS: kept as one search
    assert parse_dicomweb_query("StudyInstanceUID=1.2.3,1.2.4") == [
        {"StudyInstanceUID": "1.2.3,1.2.4"}
    ]


@pytest.mark.parametrize(
    "query, message",
    [
        ("Modalty=CR", "'Modalty' is not a DICOM keyword"),
        ("Modality=CR&limit=10", "'limit' is not allowed"),
        ("Modality=CR&Modality=DX", "given twice"),
        ("Modality=CR,,DX", "empty value"),
        ("Modality", "not of the form"),
    ],
)
def test_bad_queries_fail_with_one_line(query, message):
    with pytest.raises(DicomwebError, match=message) as info:
        parse_dicomweb_query(query)
    assert "\n" not in str(info.value)


def test_paging_follows_a_server_cap():
    items = list(range(150))
    asked = []

    def capped(offset, limit):  # a server answering at most 60 per request
        asked.append(offset)
        return items[offset : offset + min(limit, 60)]

    assert list(_dicomweb_search._paged(capped, 200)) == items
    assert asked == [0, 60, 120, 150]  # a short page may be a cap: until an empty page
    asked.clear()
    assert list(_dicomweb_search._paged(capped, 10)) == items  # pages of the size asked for
    assert asked[-1] == 150  # ... until an empty one
    # a cap of any size, even below the old threshold of 50
    assert list(_dicomweb_search._paged(lambda o, n: items[o : o + n][:7], 200)) == items


def test_paging_stops_at_a_server_that_ignores_the_offset():
    items = list(range(30))
    with pytest.warns(UserWarning, match="ignores the offset"):
        assert list(_dicomweb_search._paged(lambda o, n: items[:7], 200)) == items[:7]


# --- credentials -------------------------------------------------------------------


def test_credentials_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PACS_TOKEN", "abc.def-ghi\n")
    session = dicomweb_session("bearer", credentials_env="PACS_TOKEN")
    assert session.headers["Authorization"] == "Bearer abc.def-ghi"
    assert session.verify is True
    path = tmp_path / "secret"
    path.write_text("alice:pa:ss\n")
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a private file: no warning
        session = dicomweb_session("basic", credentials_file=path)
    assert session.auth == ("alice", "pa:ss")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert dicomweb_session(ca_bundle=bundle).verify == str(bundle)


def test_a_credentials_file_others_can_read_is_warned_of(tmp_path):
    path = tmp_path / "secret"
    path.write_text("alice:pa:ss\n")
    path.chmod(0o644)
    with pytest.warns(UserWarning, match=r"readable by others \(mode 644\).*chmod 600") as seen:
        session = dicomweb_session("basic", credentials_file=path)
    assert session.auth == ("alice", "pa:ss")  # still used: a warning, as ssh gives one
    assert len(seen) == 1 and "\n" not in str(seen[0].message)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"auth": "basic"}, "exactly one of"),
        ({"auth": "basic", "credentials_env": "NOT_SET_ANYWHERE"}, "is not set"),
        ({"auth": "digest", "credentials_env": "X"}, "auth must be one of"),
        ({"credentials_env": "X"}, "without auth"),
        ({"auth": "basic", "credentials_file": "/nonexistent/secret"}, "cannot read"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "does not exist"),
    ],
)
def test_credential_errors(kwargs, message, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(DicomwebError, match=message):
        dicomweb_session(**kwargs)


def test_credentials_in_url_are_refused(tmp_path):
    with pytest.raises(DicomwebError, match="must not hold credentials"):
        fetch_dicomweb("http://bob:secret@127.0.0.1:9/dicom-web", tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_wrong_credentials_one_line_nothing_written(orthanc, phantom_films, tmp_path):
    orthanc.upload(phantom_films[0][:2])
    wrong = tmp_path / "wrong"
    wrong.write_text(f"{orthanc.username}:not-the-password")
    with pytest.raises(DicomwebError, match=r"refused the credentials \(HTTP 401") as info:
        fetch_dicomweb(
            orthanc.dicomweb_url, tmp_path / "store", auth="basic", credentials_file=wrong
        )
    assert "\n" not in str(info.value) and "not-the-password" not in str(info.value)
    assert not (tmp_path / "store").exists()
    with pytest.raises(DicomwebError, match="refused the credentials"):  # none at all
        fetch_dicomweb(orthanc.dicomweb_url, tmp_path / "store")
    assert not (tmp_path / "store").exists()


def test_unreachable_server(tmp_path, monkeypatch):
    monkeypatch.setattr(_dicomweb, "MAX_ATTEMPTS", 1)  # no back-off before giving up
    with pytest.raises(DicomwebError, match="cannot reach DICOMweb server"):
        fetch_dicomweb("http://127.0.0.1:9/dicom-web", tmp_path / "store", timeout=5)
    assert not (tmp_path / "store").exists()


# --- retrieval ---------------------------------------------------------------------


def test_query_selects_studies_and_keeps_what_labeling_needs(
    orthanc, phantom_films, secret_file, tmp_path, caplog
):
    films, _ = phantom_films
    orthanc.upload(films)
    caplog.set_level(logging.DEBUG)
    # 16 studies, 30 days apart from 2024-01-05: the first 6 are in H1 2024
    pool = _fetch(
        orthanc,
        secret_file,
        tmp_path / "store",
        "Modality=CR,DX&StudyDate=20240101-20240630",
        page_size=2,
    )
    assert pool.n_fetched == len(pool) == 6
    by_sop = {str(ds.SOPInstanceUID): ds for ds in films}
    assert [r["sop"] for r in pool.records] == [str(ds.SOPInstanceUID) for ds in films[:6]]
    for record, path in zip(pool.records, pool.files):
        ds = by_sop[record["sop"]]
        assert record == {
            "sop": record["sop"],
            "study": ds.StudyInstanceUID,
            "series": ds.SeriesInstanceUID,
            "patient": ds.PatientID,
            "study_date": ds.StudyDate,
            "view_position": ds.ViewPosition,
            "modality": "CR",
            "file": f"instances/{record['sop']}.dcm",
        }
        import pydicom

        assert np.array_equal(pydicom.dcmread(path).pixel_array, ds.pixel_array)
    assert [r["patient"] for r in pool.records] == ["PAT0000"] * 2 + ["PAT0001"] * 2 + [
        "PAT0002"
    ] * 2
    assert "PAT000" not in caplog.text and "DOE^" not in caplog.text
    assert _fetch(orthanc, secret_file, tmp_path / "other", "Modality=DX").records == []
    reopened = DicomwebPool(tmp_path / "store")
    assert reopened.records == pool.records and reopened.n_fetched == 0


def test_servers_without_a_search_of_all_instances(
    orthanc, phantom_films, secret_file, tmp_path, monkeypatch
):
    import requests
    from dicomweb_client.api import DICOMwebClient

    orthanc.upload(phantom_films[0])
    query = "Modality=CR&StudyDate=20240301-20241231&ViewPosition=PA"
    calls = []
    search = DICOMwebClient.search_for_instances

    def counted(self, study_instance_uid=None, *args, **kwargs):
        calls.append(study_instance_uid)
        return search(self, study_instance_uid, *args, **kwargs)

    monkeypatch.setattr(DICOMwebClient, "search_for_instances", counted)
    everywhere = _fetch(orthanc, secret_file, tmp_path / "a", query).records
    assert set(calls) == {None}  # one search over the server (Orthanc offers it)

    def refused(self, study_instance_uid=None, *args, **kwargs):
        if study_instance_uid is None:
            answer = requests.Response()
            answer.status_code, answer.reason = 400, "Bad Request"
            raise requests.HTTPError(response=answer)
        return counted(self, study_instance_uid, *args, **kwargs)

    calls.clear()
    monkeypatch.setattr(DICOMwebClient, "search_for_instances", refused)
    by_study = _fetch(orthanc, secret_file, tmp_path / "b", query).records
    assert len(calls) > 1 and None not in calls[1:]  # then study by study
    assert by_study == everywhere
    views = {str(ds.SOPInstanceUID): ds.ViewPosition for ds in phantom_films[0]}
    assert everywhere and all(views[r["sop"]] == "PA" for r in everywhere)
    assert all("20240301" <= r["study_date"] <= "20241231" for r in everywhere)


def test_pneumoniamnist_films_of_one_patient(orthanc, pneumonia_films, secret_file, tmp_path):
    films, _ = pneumonia_films
    orthanc.upload(films)
    cache, pool = build_dicomweb_cache(
        orthanc.dicomweb_url,
        tmp_path / "cache",
        28,
        "PatientID=PNM0002",
        auth="basic",
        credentials_file=secret_file,
    )
    ours = films[6:9]  # patient 2: a baseline and two follow-ups, 30 days apart
    assert [r["sop"] for r in pool.records] == [str(ds.SOPInstanceUID) for ds in ours]
    assert [r["study_date"] for r in pool.records] == ["20240703", "20240802", "20240901"]
    for row, ds in enumerate(ours):
        x = ds.pixel_array.astype(float)  # no window: min-max scaled, at its own size
        expected = np.rint((x - x.min()) / (x.max() - x.min()) * 255)
        assert np.array_equal(cache.images[row], expected)


def test_paging_reads_past_the_page_size(orthanc, phantom_films, secret_file, tmp_path):
    orthanc.upload(phantom_films[0])
    pool = _fetch(orthanc, secret_file, tmp_path / "store", page_size=3)
    assert len(pool) == 16  # Orthanc honours limit=3: a client that did not page sees 3


def test_rerun_fetches_only_new_studies(orthanc, phantom_films, secret_file, tmp_path):
    films, _ = phantom_films
    orthanc.upload(films[:10])
    first = _fetch(orthanc, secret_file, tmp_path / "store", "Modality=CR")
    assert first.n_fetched == 10
    mtimes = [p.stat().st_mtime_ns for p in first.files]
    again = _fetch(orthanc, secret_file, tmp_path / "store", "Modality=CR")
    assert again.n_fetched == 0 and again.records == first.records
    orthanc.upload(films[10:])  # follow-up studies arrive
    later = _fetch(orthanc, secret_file, tmp_path / "store", "Modality=CR")
    assert later.n_fetched == 6 and len(later) == 16
    assert later.records[:10] == first.records  # earlier instances keep their place
    assert [p.stat().st_mtime_ns for p in later.files[:10]] == mtimes  # not fetched again
    assert {r["sop"] for r in later.records[10:]} == {str(d.SOPInstanceUID) for d in films[10:]}


def test_structured_reports_are_not_pool_images(orthanc, phantom_films, secret_file, tmp_path):
    from highdicom.sr import Comprehensive3DSR  # noqa: F401  (the SR maker is installed)

    from skal_cxr.labeling.pacs._dicom_sr import make_label_sr

    films, _ = phantom_films
    orthanc.upload(films[:2])
    orthanc.upload([make_label_sr(films[0], "normal", 0, raters=["alice"], model_version="m1")])
    assert orthanc.count("instances") == 3
    assert len(_fetch(orthanc, secret_file, tmp_path / "store")) == 2


def test_hashed_patient_ids(orthanc, phantom_films, secret_file, tmp_path):
    import pydicom

    films, _ = phantom_films
    orthanc.upload(films[:4])
    pool = _fetch(orthanc, secret_file, tmp_path / "store", hash_patient_ids=True)
    salt = tmp_path / "store" / "patient-id-salt"
    assert oct(salt.stat().st_mode & 0o777) == "0o600"
    patients = [r["patient"] for r in pool.records]
    assert len(set(patients)) == 2 and patients[0] == patients[1] != patients[2]
    assert all(len(p) == 64 and "PAT" not in p for p in patients)
    expected = _dicomweb_store.hash_patient_id("PAT0000", salt.read_text().strip())
    assert patients[0] == expected
    ds = pydicom.dcmread(pool.files[0])
    assert ds.PatientID == expected and ds.PatientName == ""
    assert "PatientBirthDate" not in ds and ds.PatientSex == "O"
    raw = (
        b"".join(p.read_bytes() for p in pool.files)
        + (tmp_path / "store" / "registry.json").read_bytes()
    )
    assert b"PAT0000" not in raw and b"DOE^" not in raw
    with pytest.raises(DicomwebError, match="keeps that choice"):
        _fetch(orthanc, secret_file, tmp_path / "store", hash_patient_ids=False)


def test_server_stopping_midway_leaves_whole_instances(
    orthanc, phantom_films, secret_file, tmp_path, monkeypatch
):
    import pydicom

    films, _ = phantom_films
    orthanc.upload(films)
    written = []
    write = _dicomweb_store._write_atomic

    def write_then_crash(ds, path):
        write(ds, path)
        written.append(path)
        if len(written) == 5:
            orthanc.kill()

    monkeypatch.setattr(_dicomweb_store, "_write_atomic", write_then_crash)
    monkeypatch.setattr(_dicomweb, "MAX_ATTEMPTS", 1)  # no back-off before giving up
    store = tmp_path / "cache" / "dicom"
    with pytest.raises(DicomwebError, match="run again to resume") as info:
        build_dicomweb_cache(
            orthanc.dicomweb_url,
            tmp_path / "cache",
            16,
            auth="basic",
            credentials_file=secret_file,
            fetch_n_jobs=1,
        )
    assert "\n" not in str(info.value)
    kept = sorted((store / "instances").iterdir())
    assert len(kept) == 5 and all(p.suffix == ".dcm" for p in kept)  # no partial file
    for path in kept:
        assert pydicom.dcmread(path).pixel_array.shape == (32, 32)
    assert not (store / "registry.json").exists()
    assert not (tmp_path / "cache" / "cache.json").exists()  # no cache of a partial pool

    monkeypatch.setattr(_dicomweb_store, "_write_atomic", write)
    orthanc.start()  # back, on another port
    cache, pool = build_dicomweb_cache(
        orthanc.dicomweb_url, tmp_path / "cache", 16, auth="basic", credentials_file=secret_file
    )
    assert pool.n_fetched == 11 and len(pool) == len(cache) == 16
    by_sop = {str(ds.SOPInstanceUID): ds for ds in films}
    from skal_cxr.datasets._image_io import read_image

    for row, record in enumerate(pool.records):
        assert record["sop"] in by_sop
        expected = np.rint(read_image(pool.files[row], (16, 16)) * 255)
        assert np.array_equal(cache.images[row], expected)


_KILLED_CHILD = """
import sys, time
from skal_cxr.datasets import _dicomweb_store, fetch_dicomweb
write = _dicomweb_store._write_atomic
def slow_write(ds, path):
    write(ds, path)
    time.sleep(0.2)
_dicomweb_store._write_atomic = slow_write
fetch_dicomweb(sys.argv[1], sys.argv[2], auth="basic", credentials_file=sys.argv[3], n_jobs=2)
"""


@pytest.mark.slow
def test_killed_retrieval_resumes(orthanc, phantom_films, secret_file, tmp_path):
    orthanc.upload(phantom_films[0])
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, orthanc.dicomweb_url, str(store), str(secret_file)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if len(list((store / "instances").glob("*.dcm"))) >= 4:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the retrieval ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    kept = len(list((store / "instances").glob("*.dcm")))
    assert 4 <= kept < 16 and not (store / "registry.json").exists()
    pool = _fetch(orthanc, secret_file, store)
    assert pool.n_fetched == 16 - kept and len(pool) == 16
    assert not list((store / "instances").glob(".*"))  # temporary files cleared
    registry = json.loads((store / "registry.json").read_text())
    assert len({r["sop"] for r in registry["instances"]}) == 16


def test_study_by_study_under_a_server_cap(capped_orthanc, tmp_path, monkeypatch):
    """A server answering at most 8 results to any search, without a search of all its
    instances: the studies are still all listed (the search split by study date)."""
    import requests
    from _orthanc import make_cr_films
    from dicomweb_client.api import DICOMwebClient

    from skal_cxr.datasets import make_cxr_phantoms

    X, _ = make_cxr_phantoms(17, image_size=16, random_state=0)
    films = make_cr_films(X, n_patients=17, studies_per_patient=1)
    capped_orthanc.upload(films)
    search = DICOMwebClient.search_for_instances

    def refused(self, study_instance_uid=None, *args, **kwargs):
        if study_instance_uid is None:
            answer = requests.Response()
            answer.status_code, answer.reason = 404, "Not Found"
            raise requests.HTTPError(response=answer)
        return search(self, study_instance_uid, *args, **kwargs)

    monkeypatch.setattr(DICOMwebClient, "search_for_instances", refused)
    secret = tmp_path / "secret"
    secret.write_text(f"{capped_orthanc.username}:{capped_orthanc.password}")
    pool = _fetch(capped_orthanc, secret, tmp_path / "store")
    assert {r["sop"] for r in pool.records} == {str(ds.SOPInstanceUID) for ds in films}


def test_an_instance_gone_before_its_retrieval_is_skipped(
    orthanc, phantom_films, secret_file, tmp_path, monkeypatch
):
    films, _ = phantom_films
    orthanc.upload(films[:6])
    gone = str(films[2].SOPInstanceUID)
    listed = _dicomweb_store.list_instances

    def list_then_delete(*args, **kwargs):
        found = listed(*args, **kwargs)
        orthanc.delete(gone)  # between the listing and the retrieval
        return found

    monkeypatch.setattr(_dicomweb_store, "list_instances", list_then_delete)
    pool = _fetch(orthanc, secret_file, tmp_path / "store")
    assert len(pool) == 5 and gone not in {r["sop"] for r in pool.records}
    assert pool.skipped[gone]["kind"] == "vanished" and "HTTP 404" in pool.skipped[gone]["reason"]
    monkeypatch.setattr(_dicomweb_store, "list_instances", listed)
    orthanc.upload(films[2:3])  # back: retrieved again, no longer skipped
    pool = _fetch(orthanc, secret_file, tmp_path / "store")
    assert len(pool) == 6 and pool.records[-1]["sop"] == gone and pool.skipped == {}


def test_a_study_larger_than_a_server_cap_is_reported(capped_orthanc, tmp_path, monkeypatch):
    import requests
    from _orthanc import make_cr_films
    from dicomweb_client.api import DICOMwebClient

    from skal_cxr.datasets import make_cxr_phantoms

    X, _ = make_cxr_phantoms(12, image_size=16, random_state=0)
    films = make_cr_films(X, n_patients=1, studies_per_patient=12)
    for ds in films:  # one study of 12 films: more than the cap of 8
        ds.StudyInstanceUID, ds.StudyDate = films[0].StudyInstanceUID, films[0].StudyDate
    capped_orthanc.upload(films)
    search = DICOMwebClient.search_for_instances

    def refused(self, study_instance_uid=None, *args, **kwargs):
        if study_instance_uid is None:
            answer = requests.Response()
            answer.status_code, answer.reason = 404, "Not Found"
            raise requests.HTTPError(response=answer)
        return search(self, study_instance_uid, *args, **kwargs)

    monkeypatch.setattr(DICOMwebClient, "search_for_instances", refused)
    secret = tmp_path / "secret"
    secret.write_text(f"{capped_orthanc.username}:{capped_orthanc.password}")
    with pytest.warns(UserWarning, match="listed 8 of the 12 instances of study") as caught:
        pool = _fetch(capped_orthanc, secret, tmp_path / "store")
    assert len(pool) == 8 and "\n" not in str(caught[0].message)

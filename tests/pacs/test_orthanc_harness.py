"""The Orthanc test harness itself: loopback only, authentication on, films stored, stopped."""

import requests


def test_orthanc_requires_credentials_and_binds_loopback(orthanc):
    assert orthanc.url.startswith("http://127.0.0.1:")
    assert requests.get(orthanc.url + "/system", timeout=5).status_code == 401
    wrong = (orthanc.username, "not-the-password")
    assert requests.get(orthanc.dicomweb_url + "/studies", auth=wrong, timeout=5).status_code == 401
    r = requests.get(orthanc.url + "/plugins", auth=orthanc.auth, timeout=5)
    assert "dicom-web" in r.json()


def test_films_have_patients_with_follow_ups(orthanc, phantom_films):
    films, _ = phantom_films
    orthanc.upload(films)
    assert (orthanc.count("patients"), orthanc.count("studies"), orthanc.count("instances")) == (
        8,
        16,
        16,
    )
    r = requests.get(
        orthanc.dicomweb_url + "/studies",
        params={"PatientID": "PAT0003"},
        auth=orthanc.auth,
        timeout=5,
    )
    studies = r.json()
    assert len(studies) == 2
    dates = sorted(s["00080020"]["Value"][0] for s in studies)  # StudyDate
    assert dates == ["20240703", "20240802"]  # study 6 is 180 days after the first, then 30


def test_orthanc_pages_with_offset_and_limit(orthanc, phantom_films):
    orthanc.upload(phantom_films[0])
    pages = [
        requests.get(
            orthanc.dicomweb_url + "/studies",
            auth=orthanc.auth,
            timeout=5,
            params={"offset": offset, "limit": 5},
        ).json()
        for offset in (0, 5, 10, 15, 20)
    ]
    assert [len(p) for p in pages] == [5, 5, 5, 1, 0]
    uids = {s["0020000D"]["Value"][0] for p in pages for s in p}
    assert len(uids) == 16


def test_stop_leaves_no_process(tmp_path):
    import pytest
    from _orthanc import OrthancServer, orthanc_missing

    if orthanc_missing():
        pytest.skip(orthanc_missing())
    server = OrthancServer(tmp_path).start()
    process = server.process
    server.stop()
    assert process.poll() is not None
    server.stop()  # idempotent

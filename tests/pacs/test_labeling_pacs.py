"""Labeling projects over a PACS, against a real Orthanc: init, resume, pull, loop, export."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("dicomweb_client")
pytest.importorskip("highdicom")

from skal_cxr.datasets import _dicomweb, _dicomweb_store  # noqa: E402
from skal_cxr.exceptions import LabelingError  # noqa: E402
from skal_cxr.labeling import (  # noqa: E402
    export_dicom,
    init_dicomweb_project,
    open_project,
    pull_dicomweb,
)

HERE = Path(__file__).parent
CLASSES = ["normal", "moderate", "severe"]
TINY = {
    "image_size": 16,
    "n_mc_samples": 3,
    "stop_set_size": 8,
    "query_size": 4,
    "reserve_size": 0,
    "estimator": {"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
    "training": {"max_epochs": 1, "min_train_steps": 2},
}


@pytest.fixture
def secret_env(orthanc, monkeypatch):
    monkeypatch.setenv("SKAL_TEST_PACS", f"{orthanc.username}:{orthanc.password}")
    return {"auth": "basic", "credentials_env": "SKAL_TEST_PACS"}


def _init(orthanc, path, secret_env, query="Modality=CR", **options):
    return init_dicomweb_project(
        path, orthanc.dicomweb_url, CLASSES, query=query, **secret_env, **{**TINY, **options}
    )


def _truth(films, classes):
    return {str(ds.SOPInstanceUID): CLASSES[c] for ds, c in zip(films, classes)}


def _label_queue(project, rater, truth):
    """Label every image the project hands ``rater`` until it has none; return how many."""
    table = {i: rel for i, rel, _, _ in project.image_table()}
    n = 0
    while True:
        nxt = project.next_image(rater)
        if nxt["image_id"] is None:
            return n
        sop = Path(table[nxt["image_id"]]).stem
        project.submit_label(rater, nxt["image_id"], truth[sop])
        n += 1


def test_init_from_a_query(orthanc, phantom_films, secret_env, tmp_path):
    films, _ = phantom_films
    orthanc.upload(films)
    project = _init(orthanc, tmp_path / "p", secret_env, "Modality=CR&StudyDate=20240101-20240831")
    assert project.n_images() == 8  # 16 studies 30 days apart from 2024-01-05
    table = project.image_table()
    by_sop = {str(ds.SOPInstanceUID): ds for ds in films}
    for _, rel, _, patient in table:
        ds = by_sop[Path(rel).stem]
        assert patient == ds.PatientID
        assert rel == f"instances/{ds.SOPInstanceUID}.dcm"
    source = project.config["dicomweb"]
    assert source == {
        "url": orthanc.dicomweb_url,
        "query": "Modality=CR&StudyDate=20240101-20240831",
        "auth": "basic",
        "hash_patient_ids": False,
    }
    with pytest.raises(LabelingError, match="already a project; `skal-cxr label pull"):
        _init(orthanc, tmp_path / "p", secret_env)
    # the secret is nowhere in the project
    for path in (tmp_path / "p").rglob("*"):
        if path.is_file():
            assert orthanc.password.encode() not in path.read_bytes(), path


def test_wrong_credentials_one_line_nothing_written(orthanc, phantom_films, tmp_path, monkeypatch):
    orthanc.upload(phantom_films[0][:2])
    monkeypatch.setenv("SKAL_TEST_PACS", f"{orthanc.username}:wrong")
    with pytest.raises(LabelingError, match="refused the credentials") as info:
        _init(orthanc, tmp_path / "p", {"auth": "basic", "credentials_env": "SKAL_TEST_PACS"})
    assert "\n" not in str(info.value)
    assert not (tmp_path / "p").exists()


def test_bad_option_fails_before_retrieval(orthanc, phantom_films, secret_env, tmp_path):
    orthanc.upload(phantom_films[0][:2])
    with pytest.raises(LabelingError, match="'consensus' parameter of init_project must be"):
        _init(orthanc, tmp_path / "p", secret_env, consensus="unanimous")
    assert not (tmp_path / "p").exists()
    with pytest.raises(LabelingError, match="matched no image"):
        _init(orthanc, tmp_path / "p", secret_env, query="Modality=DX")


def test_cli_wrong_credentials_one_line(orthanc, phantom_films, tmp_path, monkeypatch, capsys):
    from skal_cxr.cli import main

    orthanc.upload(phantom_films[0][:2])
    monkeypatch.setenv("SKAL_TEST_PACS", f"{orthanc.username}:wrong")
    assert (
        main(
            [
                "label",
                "init",
                str(tmp_path / "p"),
                "--dicomweb",
                orthanc.dicomweb_url,
                "--auth",
                "basic",
                "--credentials-env",
                "SKAL_TEST_PACS",
                "--classes",
                "a,b",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refused the credentials" in err
    assert "wrong" not in err
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--image-dir", "{tmp}", "--query", "Modality=CR"], "--query need --dicomweb"),
        (
            ["--dicomweb", "http://127.0.0.1:9/dicom-web", "--csv", "x.csv"],
            "--csv do not apply to --dicomweb",
        ),
        (["--image-dir", "{tmp}", "--dicomweb", "http://127.0.0.1:9"], "not allowed with"),
    ],
)
def test_cli_source_options(argv, message, tmp_path, capsys):
    from skal_cxr.cli import main

    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        code = main(["label", "init", str(tmp_path / "p"), "--classes", "a,b", *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err


def test_cli_init_pull_export(orthanc, phantom_films, secret_env, tmp_path, capsys):
    from skal_cxr.cli import main

    films, classes = phantom_films
    orthanc.upload(films[:8])
    project = str(tmp_path / "p")
    common = ["--credentials-env", "SKAL_TEST_PACS"]
    assert (
        main(
            [
                "label",
                "init",
                project,
                "--dicomweb",
                orthanc.dicomweb_url,
                "--query",
                "Modality=CR",
                "--auth",
                "basic",
                *common,
                "--classes",
                ",".join(CLASSES),
                "--query-size",
                "4",
                "--reserve-size",
                "0",
                "--image-size",
                "16",
            ]
        )
        == 0
    )
    assert "8 images" in capsys.readouterr().out
    orthanc.upload(films[8:])
    assert main(["label", "pull", project, *common]) == 0
    assert "8 new images, 16 in all" in capsys.readouterr().out
    opened = open_project(project)
    opened.add_rater("alice")
    assert _label_queue(opened, "alice", _truth(films, classes)) == 4
    assert (
        main(
            [
                "label",
                "export",
                project,
                "--to-dicom",
                str(tmp_path / "sr"),
                "--stow",
                orthanc.dicomweb_url,
                *common,
            ]
        )
        == 0
    )
    assert "Wrote 4 structured reports" in capsys.readouterr().err
    assert len(list((tmp_path / "sr").glob("*.dcm"))) == 4
    assert (
        main(
            [
                "label",
                "export",
                project,
                "-o",
                str(tmp_path / "l.csv"),
                "--stow",
                orthanc.dicomweb_url,
            ]
        )
        == 2
    )
    assert "go with --to-dicom" in capsys.readouterr().err


def test_server_stopping_midway_then_resumed(
    orthanc, phantom_films, secret_env, tmp_path, monkeypatch
):
    films, _ = phantom_films
    orthanc.upload(films)
    written = []
    write = _dicomweb_store._write_atomic

    def write_then_crash(ds, path):
        write(ds, path)
        written.append(path)
        if len(written) == 6:
            orthanc.kill()

    monkeypatch.setattr(_dicomweb_store, "_write_atomic", write_then_crash)
    monkeypatch.setattr(_dicomweb, "MAX_ATTEMPTS", 1)  # no back-off before giving up
    with pytest.raises(LabelingError, match="run again to resume"):
        _init(orthanc, tmp_path / "p", secret_env, fetch_n_jobs=1)
    instances = list((tmp_path / "p" / "dicom" / "instances").iterdir())
    assert len(instances) == 6 and all(p.suffix == ".dcm" for p in instances)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["dicom"]  # no cache, no db
    monkeypatch.setattr(_dicomweb_store, "_write_atomic", write)
    orthanc.start()
    project = _init(orthanc, tmp_path / "p", secret_env)
    assert project.n_images() == 16
    assert project.pool_array().shape == (16, 1, 16, 16)


_KILLED_CHILD = """
import sys, time
from skal_cxr.datasets import _dicomweb_store
from skal_cxr.labeling import init_dicomweb_project
write = _dicomweb_store._write_atomic
def slow_write(ds, path):
    write(ds, path)
    time.sleep(0.2)
_dicomweb_store._write_atomic = slow_write
init_dicomweb_project(sys.argv[2], sys.argv[1], ["a", "b"], auth="basic",
                      credentials_env="SKAL_TEST_PACS", fetch_n_jobs=1, image_size=16,
                      query_size=4)
"""


@pytest.mark.slow
def test_init_killed_midway_resumes(orthanc, phantom_films, secret_env, tmp_path):
    orthanc.upload(phantom_films[0])
    store = tmp_path / "p" / "dicom" / "instances"
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, orthanc.dicomweb_url, str(tmp_path / "p")], env=env
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and child.poll() is None:
            if len(list(store.glob("*.dcm"))) >= 3:
                break
            time.sleep(0.02)
        assert child.poll() is None, "init ended before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    kept = len(list(store.glob("*.dcm")))
    assert 3 <= kept < 16
    project = init_dicomweb_project(
        tmp_path / "p", orthanc.dicomweb_url, ["a", "b"], **secret_env, image_size=16, query_size=4
    )
    assert project.n_images() == 16
    assert not list(store.glob(".*"))


def test_new_studies_are_pulled_and_labeled(orthanc, phantom_films, secret_env, tmp_path):
    films, classes = phantom_films
    orthanc.upload(films[:10])
    project = _init(orthanc, tmp_path / "p", secret_env, initial_size=4)
    assert project.n_images() == 10
    project.add_rater("oracle")
    truth = _truth(films, classes)
    assert _label_queue(project, "oracle", truth) == 4
    assert project.train_round() == 1
    store = tmp_path / "p" / "dicom" / "instances"
    mtimes = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    orthanc.upload(films[10:])  # follow-up studies arrive
    assert pull_dicomweb(open_project(tmp_path / "p"), credentials_env="SKAL_TEST_PACS") == 6
    assert pull_dicomweb(open_project(tmp_path / "p"), credentials_env="SKAL_TEST_PACS") == 0
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir() if p.name in mtimes} == mtimes
    # the project object that trained before the pull sees the grown pool
    assert project.n_images() == 16
    ids = [int(i) for i, _, _, _ in project.image_table()]
    assert ids == list(range(1, 17))  # the earlier images keep their ids
    # the pulled films are dated like those of init (the related view orders by date)
    dates = [
        next(f["date"] for f in project.related_images(i) if f["current"]) for i in range(1, 17)
    ]
    assert None not in dates and all(len(d) == 8 and d.isdigit() for d in dates)
    assert project.pool_array().shape == (16, 1, 16, 16)
    # the loop goes on over the grown pool
    assert _label_queue(project, "oracle", truth) == 4
    assert project.train_round() == 2
    assert project.progress()["progress"]["total"] == 16


def test_export_structured_reports_and_stow(orthanc, phantom_films, secret_env, tmp_path):
    import requests

    films, classes = phantom_films
    orthanc.upload(films[:8])
    project = _init(orthanc, tmp_path / "p", secret_env, labels_per_image=2)
    truth = _truth(films, classes)
    project.add_rater("alice")
    project.add_rater("bob")
    assert _label_queue(project, "alice", truth) == 4
    assert _label_queue(project, "bob", truth) == 4
    ids, codes = project.labeled_set()
    assert len(ids) == 4
    n_written, n_stored = export_dicom(
        project, tmp_path / "out", stow=orthanc.dicomweb_url, credentials_env="SKAL_TEST_PACS"
    )
    assert (n_written, n_stored) == (4, 4)
    table = {int(i): Path(rel).stem for i, rel, _, _ in project.image_table()}
    expected = {table[i]: CLASSES[c] for i, c in zip(ids.tolist(), codes.tolist())}
    got = {}
    for path in (tmp_path / "out").iterdir():
        sr = pydicom.dcmread(path)
        finding = next(
            i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "121071"
        )  # Finding
        image = finding.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        got[image] = finding.ConceptCodeSequence[0].CodeMeaning
        observers = [str(i.PersonName) for i in sr.ContentSequence if i.ValueType == "PNAME"]
        assert observers == ["alice^", "bob^"]
    assert got == expected
    found = requests.get(
        orthanc.dicomweb_url + "/instances",
        params={"Modality": "SR"},
        auth=orthanc.auth,
        timeout=10,
    ).json()
    assert {f["00080018"]["Value"][0] for f in found} == {
        p.stem for p in (tmp_path / "out").iterdir()
    }


def test_hashed_project_reports_carry_the_pacs_patient(
    orthanc, phantom_films, secret_env, tmp_path
):
    import requests

    films, classes = phantom_films
    orthanc.upload(films[:4])
    project = _init(orthanc, tmp_path / "p", secret_env, hash_patient_ids=True)
    assert all(len(p) == 64 for _, _, _, p in project.image_table())
    project.add_rater("alice")
    _label_queue(project, "alice", _truth(films, classes))
    old = os.umask(0o022)
    try:
        export_dicom(project, tmp_path / "local")
        export_dicom(
            project, tmp_path / "sent", stow=orthanc.dicomweb_url, credentials_env="SKAL_TEST_PACS"
        )
    finally:
        os.umask(old)
    # nothing identifying reaches the disk: the reports written carry the hashed ids
    real = [b"PAT000", b"DOE^", b"19600101"]
    for folder in ("local", "sent", "p"):
        for path in (tmp_path / folder).rglob("*"):
            if path.is_file():
                assert not [r for r in real if r in path.read_bytes()], path
    written = list((tmp_path / "sent").iterdir())
    assert len(written) == 4
    for path in written:
        assert oct(path.stat().st_mode & 0o777) == oct(0o600), path
        assert len(pydicom.dcmread(path).PatientID) == 64
    # ... while the PACS got its own patient attributes, held in memory only
    found = requests.get(
        orthanc.dicomweb_url + "/instances",
        params={"Modality": "SR", "includefield": "00100020"},
        auth=orthanc.auth,
        timeout=10,
    ).json()
    assert len(found) == 4
    assert {f["00100020"]["Value"][0] for f in found} <= {"PAT0000", "PAT0001"}
    assert orthanc.count("patients") == 2  # filed with the films' patients, none new


def _films(n, size, prefix, date="20250105"):
    from _orthanc import make_cr_films

    rng = np.random.default_rng(len(prefix) + n + size)
    pixels = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    return make_cr_films(pixels, n, 1, first_date=date, patient_prefix=prefix)


def _status(project_dir, capsys):
    from skal_cxr.cli import main

    capsys.readouterr()
    assert main(["label", "status", str(project_dir)]) == 0
    return capsys.readouterr().out


def test_refused_and_vanished_instances_never_block_a_pull(
    orthanc, phantom_films, secret_env, tmp_path, monkeypatch, capsys
):
    films, _ = phantom_films  # 32 x 32
    big = _films(2, 64, "BIG")  # 64 x 64: over the limit set below
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", str(40 * 40))
    orthanc.upload(films[:6] + big[:1])
    path = tmp_path / "p"
    project = _init(orthanc, path, secret_env)  # one refused film does not stop the init
    assert project.n_images() == 6
    orthanc.upload(big[1:] + films[6:10])
    assert pull_dicomweb(open_project(path), credentials_env="SKAL_TEST_PACS") == 4
    out = _status(path, capsys)
    refused = [line for line in out.splitlines() if "skipped" in line]
    assert len(refused) == 3, out  # a summary line, then one line per instance
    for film in big:
        assert any(str(film.SOPInstanceUID) in line and "4,096" in line for line in refused)
    # one refused film vanishes: deleted from the server and from the store
    orthanc.delete(str(big[1].SOPInstanceUID))
    (path / "dicom" / "instances" / f"{big[1].SOPInstanceUID}.dcm").unlink()
    orthanc.upload(films[10:12])
    assert pull_dicomweb(open_project(path), credentials_env="SKAL_TEST_PACS") == 2
    assert pull_dicomweb(open_project(path), credentials_env="SKAL_TEST_PACS") == 0
    out = _status(path, capsys)
    lines = out.splitlines()
    assert any(str(big[1].SOPInstanceUID) in line and "vanished" in line for line in lines)
    # a raised limit: the next pull takes the refused film that is still there
    monkeypatch.setenv("SKAL_CXR_MAX_PIXELS", str(100 * 100))
    project = open_project(path)
    assert pull_dicomweb(project, credentials_env="SKAL_TEST_PACS") == 1
    assert project.n_images() == 13
    assert f"instances/{big[0].SOPInstanceUID}.dcm" in {r for _, r, _, _ in project.image_table()}
    assert str(big[0].SOPInstanceUID) not in _status(path, capsys)
    assert project.pool_array().shape == (13, 1, 16, 16)


@pytest.fixture
def capped_secret(capped_orthanc, monkeypatch):
    monkeypatch.setenv("SKAL_TEST_PACS", f"{capped_orthanc.username}:{capped_orthanc.password}")
    return {"auth": "basic", "credentials_env": "SKAL_TEST_PACS"}


def test_a_server_cap_on_search_results_is_not_silent(capped_orthanc, capped_secret, tmp_path):
    """Orthanc with LimitFindInstances = LimitFindResults = 7 answers 8 results to any
    search and nothing past them, whatever the offset."""
    orthanc = capped_orthanc
    films = _films(17, 16, "CAP", date="20240105")  # 30 days apart
    orthanc.upload(films)
    project = _init(orthanc, tmp_path / "p", capped_secret, query=None)
    assert project.n_images() == 17
    orthanc.upload(_films(3, 16, "NEW", date="20260105"))
    assert pull_dicomweb(open_project(tmp_path / "p"), credentials_env="SKAL_TEST_PACS") == 3


def test_a_cap_that_cannot_be_worked_around_is_reported(capped_orthanc, capped_secret, tmp_path):
    orthanc = capped_orthanc
    films = _films(16, 16, "DAY")
    for k, ds in enumerate(films):  # 12 films of one day: more than the cap of 8
        ds.StudyDate = ds.SeriesDate = "20240105" if k < 12 else "20240301"
    orthanc.upload(films)
    with pytest.warns(UserWarning, match="capped") as caught:
        project = _init(orthanc, tmp_path / "p", capped_secret, query=None)
    (message,) = [str(w.message) for w in caught if "capped" in str(w.message)]
    assert "\n" not in message and "StudyDate 20240105" in message
    assert project.n_images() == 8 + 4  # the day's 8 the server answers, and the other day's


def test_export_to_dicom_needs_dicom_images(tmp_path):
    from PIL import Image

    from skal_cxr.labeling import init_project

    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(images / f"im{i}.png")
    project = init_project(tmp_path / "p", images, CLASSES, **{**TINY, "initial_size": 2})
    project.add_rater("alice")
    nxt = project.next_image("alice")
    project.submit_label("alice", nxt["image_id"], "normal")
    with pytest.raises(LabelingError, match="is not a DICOM instance") as info:
        export_dicom(project, tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()

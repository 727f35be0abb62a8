"""Hostile requests: every error is JSON ``{"detail": ...}`` with its status, the server goes on.

Out-of-range integers, lone surrogates, malformed numbers and storage
failures (a full disk, a read-only database) are sent to every endpoint; no
answer may be a plain-text 500, each error is logged once, and the server
answers the next request normally.
"""

import json
import logging
import os
import shutil
import sqlite3
import subprocess

import pytest

pytest.importorskip("fastapi")
from _labeling_fakes import truth_of  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import create_app  # noqa: E402

HUGE = [
    "18446744073709551616",
    "-9223372036854775809",
    "1" + "0" * 40,
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "0",
    "-1",
    "9223372036854775807",
]
SURROGATE = '"\\ud800"'  # a lone surrogate, as JSON writes it
IDS = [
    "18446744073709551616",
    "-1",
    "0",
    "1e400",
    "%ED%A0%80",
    "%00",
    "a" * 5000,
    "9223372036854775808",
    "..%2F..%2Fetc",
]


@pytest.fixture
def served(make_project):
    project = make_project()
    token = project.add_rater("alice")
    client = TestClient(
        create_app(project, allowed_hosts=["testserver"], background=False),
        raise_server_exceptions=False,
    )
    return project, client, {"Authorization": f"Bearer {token}"}


def _post(client, url, raw, auth):
    return client.post(
        url,
        content=raw.encode("utf-8", "surrogatepass"),
        headers={**auth, "Content-Type": "application/json"},
    )


def _assert_json_error(r, *statuses):
    where = f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:200]!r}"
    assert r.status_code in statuses, where
    assert r.headers["content-type"].startswith("application/json"), where
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, where
    return detail


def _still_serving(client, auth):
    r = client.get("/api/me", headers=auth)
    assert r.status_code == 200 and r.json()["rater"] == "alice"


def _bodies(image_id):
    """(url, raw JSON) of hostile bodies for every POST endpoint."""
    for number in HUGE:
        yield "/api/undo", f'{{"label_id": {number}}}'
        yield "/api/labels", f'{{"image_id": "{image_id}", "label": "normal", "seconds": {number}}}'
        yield "/api/labels", f'{{"image_id": {number}, "label": "normal"}}'
        yield "/api/skip", f'{{"image_id": {number}}}'
    base = {"image_id": json.dumps(image_id), "label": '"normal"'}
    for field in ("image_id", "label", "note"):
        fields = {**base, field: SURROGATE}
        yield "/api/labels", "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    yield "/api/skip", f'{{"image_id": {SURROGATE}}}'
    yield "/api/undo", f'{{"label_id": {SURROGATE}}}'
    yield "/api/labels", f'{{"image_id": "{image_id}", "label": "normal", "note": "a\\u0000b"}}'
    yield "/api/labels", '{"image_id": "1", "label": "normal"' + ', "x": 1' * 3 + "}"
    yield "/api/undo", "[1, 2]"
    yield "/api/undo", '{"label_id": 1' * 50


def test_out_of_range_and_surrogates_are_json_errors_everywhere(served, caplog):
    project, client, auth = served
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    for url, raw in _bodies(image_id):
        with caplog.at_level(logging.ERROR):
            r = _post(client, url, raw, auth)
        if r.status_code < 400:  # accepted: a sensible value (a note "a\0b", a seconds of 0)
            assert url == "/api/labels", (url, raw)
            undone = client.post("/api/undo", headers=auth, json={"label_id": r.json()["label_id"]})
            assert undone.status_code == 200, undone.text
            continue
        _assert_json_error(r, 404, 409, 422)
        _still_serving(client, auth)
    for image in IDS:
        for suffix in ("", "/pixels"):
            r = client.get(f"/api/images/{image}{suffix}", headers=auth)
            _assert_json_error(r, 404, 422)
    _still_serving(client, auth)
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_undo_of_a_label_id_beyond_64_bits_is_404(served):
    _, client, auth = served
    r = _post(client, "/api/undo", '{"label_id": 18446744073709551616}', auth)
    assert "label" in _assert_json_error(r, 404, 422)


def test_a_note_with_a_lone_surrogate_is_422(served):
    project, client, auth = served
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    raw = f'{{"image_id": "{image_id}", "label": "normal", "note": {SURROGATE}}}'
    detail = _assert_json_error(_post(client, "/api/labels", raw, auth), 422)
    assert "note" in detail
    r = client.post(
        "/api/labels", headers=auth, json={"image_id": image_id, "label": "normal", "note": "fine"}
    )
    assert r.status_code == 201  # the image is still the rater's, nothing half-written


# -- storage failures: 503 with Retry-After, logged once, and serving resumes ------
def _label_all(client, auth, project, truth, statuses):
    """Post labels until a request fails; the failed responses."""
    failed = []
    for _ in range(3):
        nxt = client.get("/api/next", headers=auth)
        if nxt.status_code != 200:
            failed.append(nxt)
            continue
        image_id = nxt.json()["image_id"]
        if image_id is None:
            break
        r = client.post(
            "/api/labels",
            headers=auth,
            json={
                "image_id": image_id,
                "label": truth_of(project, truth, image_id),
                "note": "x" * 2000,
            },
        )
        if r.status_code != 201:
            failed.append(r)
    for r in failed:
        assert r.status_code in statuses
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers.get("retry-after"), r.headers
        assert r.json()["detail"]
    return failed


def _storage_errors(caplog):
    return [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_a_read_only_database_is_503_and_serving_resumes(
    served, phantom_folder, caplog, monkeypatch
):
    """``PRAGMA query_only``: every write fails as on a read-only file (root ignores modes)."""
    project, client, auth = served
    real = sqlite3.connect

    def read_only(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.execute("PRAGMA query_only = ON")
        return conn

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with caplog.at_level(logging.ERROR):
        failed = _label_all(client, auth, project, phantom_folder[1], (503,))
    assert failed, "no write failed"
    errors = _storage_errors(caplog)
    assert 1 <= len(errors) <= len(failed)  # logged once per failed request
    monkeypatch.setattr(sqlite3, "connect", real)
    _still_serving(client, auth)
    nxt = client.get("/api/next", headers=auth).json()["image_id"]
    r = client.post(
        "/api/labels",
        headers=auth,
        json={"image_id": nxt, "label": truth_of(project, phantom_folder[1], nxt)},
    )
    assert r.status_code == 201, r.text


def _mount_small_tmpfs(path, size="32m"):
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs where one can be mounted (root), else None."""
    path = tmp_path / "disk"
    mounted = _mount_small_tmpfs(path)
    yield path if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_is_503_and_serving_resumes(small_disk, phantom_folder, caplog):
    from _labeling_fakes import CLASSES, TINY

    from skal_cxr.labeling import init_project

    if small_disk is None:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    project = init_project(
        small_disk / "project", phantom_folder[0], CLASSES, **{**TINY, "query_size": 5}
    )
    token = project.add_rater("alice")
    auth = {"Authorization": f"Bearer {token}"}
    client = TestClient(
        create_app(project, allowed_hosts=["testserver"], background=False),
        raise_server_exceptions=False,
    )
    nxt = client.get("/api/next", headers=auth).json()["image_id"]  # written while room
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    with caplog.at_level(logging.ERROR):
        failed = _label_all(client, auth, project, phantom_folder[1], (503,))
    assert failed and nxt is not None
    filler.unlink()
    _still_serving(client, auth)
    r = client.post(
        "/api/labels",
        headers=auth,
        json={"image_id": nxt, "label": truth_of(project, phantom_folder[1], nxt)},
    )
    assert r.status_code in (201, 409), r.text  # written now, or written before the disk filled


def test_sqlite_errors_are_classified():
    """The classes the app maps to 503: full, read-only, locked, I/O."""
    from skal_cxr.labeling.store._storage import storage_error

    for message in (
        "database or disk is full",
        "attempt to write a readonly database",
        "database is locked",
        "disk I/O error",
    ):
        assert storage_error(sqlite3.OperationalError(message)).status == 503
    assert storage_error(sqlite3.IntegrityError("UNIQUE constraint failed")) is None


def test_an_unexpected_error_is_a_json_500_logged_once(served, caplog, monkeypatch):
    project, client, auth = served

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(project, "status", broken)
    with caplog.at_level(logging.ERROR):
        r = client.get("/api/status", headers=auth)
    assert _assert_json_error(r, 500) == "internal error; the server logged it."
    logged = _storage_errors(caplog)
    assert len(logged) == 1 and "GET /api/status" in logged[0].getMessage()
    assert "a bug" in logged[0].exc_text
    _still_serving(client, auth)


def test_an_image_file_gone_or_undecodable_is_404(tmp_path):
    from _labeling_fakes import CLASSES, TINY, write_phantoms

    from skal_cxr.labeling import init_project

    write_phantoms(tmp_path / "images", n=20)  # a folder of its own: its files are damaged
    project = init_project(
        tmp_path / "project",
        tmp_path / "images",
        CLASSES,
        **{**TINY, "query_size": 5, "stop_set_size": 5},
    )
    auth = {"Authorization": f"Bearer {project.add_rater('alice')}"}
    client = TestClient(
        create_app(project, allowed_hosts=["testserver"], background=False),
        raise_server_exceptions=False,
    )
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    path = project.image_path(image_id)
    path.write_bytes(b"not an image any more")
    for suffix in ("", "/pixels"):
        detail = _assert_json_error(
            client.get(f"/api/images/{image_id}{suffix}", headers=auth), 404
        )
        assert "cannot be shown" in detail
    path.unlink()
    _assert_json_error(client.get(f"/api/images/{image_id}/pixels", headers=auth), 404)
    _still_serving(client, auth)

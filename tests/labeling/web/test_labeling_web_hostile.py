"""What a hostile user of the labeling web app found, one class of defect per test group.

A replaced film is never served stale; the ``Host`` check cannot be turned
off and refuses in JSON; a shared or placeholder patient id does not open the
archive; a failed round is visible to the owner and the raters and is tried
again; held images are given back when the page closes; bodies are limited
in size, authenticated before they are parsed and refused in JSON (422); a
label of a film that is gone is refused; a symbolic link out of the image
folder is named when ``init`` leaves it out.
"""

import csv
import io
import json
import os
import time
import warnings

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from _labeling_fakes import CLASSES, TINY, write_phantoms  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.exceptions import LabelingError  # noqa: E402
from skal_cxr.labeling import create_app, init_project  # noqa: E402
from skal_cxr.labeling.store import _access  # noqa: E402
from skal_cxr.labeling.web import _app  # noqa: E402
from skal_cxr.labeling.web._app import _allowed_hosts  # noqa: E402
from skal_cxr.labeling.worker import _scheduler  # noqa: E402

MAX_RELATED_FILMS = getattr(_access, "MAX_RELATED_FILMS", 24)
MAX_BODY_BYTES = getattr(_app, "MAX_BODY_BYTES", 1 << 20)


def _project(tmp_path, n=20, patients=None, **options):
    """A tiny project over its own ``n`` phantoms (files of its own: tests replace them)."""
    folder = tmp_path / "images"
    write_phantoms(folder, n=n)
    extra = {}
    if patients is not None:
        table = tmp_path / "images.csv"
        with open(table, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "patient"])
            w.writerows((f"im{i:03d}.png", p) for i, p in enumerate(patients))
        extra = {"csv": table, "group_column": "patient"}
    settings = {**TINY, "query_size": 5, **extra, **options}
    return init_project(tmp_path / "project", folder, CLASSES, **settings), folder


def _client(project, **kw):
    app = create_app(project, allowed_hosts=["testserver"], background=False, **kw)
    return TestClient(app, raise_server_exceptions=False)


def _auth(project, name="alice"):
    return {"Authorization": f"Bearer {project.add_rater(name)}"}


def _json_error(r, *statuses):
    where = f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:200]!r}"
    assert r.status_code in statuses, where
    assert r.headers["content-type"].startswith("application/json"), where
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, where
    return detail


# -- 1. a replaced film is never served stale ----------------------------------------


def _png_pixels(data):
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)


@pytest.mark.parametrize("same_mtime", [False, True])
def test_replaced_film_is_not_served_stale(tmp_path, same_mtime):
    project, folder = _project(tmp_path)
    auth = _auth(project)
    client = _client(project)
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    rel = {i: r for i, r, _, _ in project.image_table()}[image_id]
    urls = [
        f"/api/images/{image_id}",
        f"/api/images/{image_id}/pixels?format=png",
        f"/api/images/{image_id}/pixels?format=png&max_size=64",
    ]
    before = {u: client.get(u, headers=auth).content for u in urls}  # cached now
    path = folder / rel
    stat = path.stat()
    new = tmp_path / "new.png"
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(new)
    if same_mtime:  # an edit with its time stamp restored (cp -p, rsync -a)
        os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(new, path)
    for u in urls:
        after = client.get(u, headers=auth)
        assert after.status_code == 200
        assert after.content != before[u], f"{u} is the film before it was replaced"
        assert np.all(_png_pixels(after.content) == _png_pixels(after.content).flat[0]), u


# -- 2. the Host check cannot be turned off, and refuses in JSON ---------------------------


@pytest.mark.parametrize("public", ["*", "*.example.org", "", " ", "evil.*", "a b"])
def test_wildcard_or_empty_public_host_is_refused_at_startup(public):
    with pytest.raises(LabelingError) as info:
        _allowed_hosts("0.0.0.0", public)
    assert "\n" not in str(info.value)
    with pytest.raises(LabelingError):
        _allowed_hosts("127.0.0.1", public)


def test_wildcard_allowed_hosts_is_refused_by_create_app(tmp_path):
    project, _ = _project(tmp_path)
    with pytest.raises(LabelingError):
        create_app(project, allowed_hosts=["*"], background=False)


def test_refused_host_is_json(tmp_path):
    project, _ = _project(tmp_path)
    auth = _auth(project)
    client = _client(project)
    for path in ("/api/me", "/api/health", "/", "/static/common.js"):
        r = client.get(path, headers={**auth, "Host": "evil.example"})
        assert "host" in _json_error(r, 400).lower()
    assert client.get("/api/me", headers=auth).status_code == 200


# -- 3. a shared or placeholder patient id does not open the archive ------------------


def _readable(client, auth, project):
    return [
        i
        for i, *_ in project.image_table()
        if client.get(f"/api/images/{i}/pixels?format=png&max_size=64", headers=auth).status_code
        == 200
    ]


@pytest.mark.parametrize("placeholder", ["UNKNOWN", "anonymous", "0", "000000"])
def test_placeholder_patient_links_nothing(tmp_path, placeholder):
    project, _ = _project(tmp_path, n=30, patients=[placeholder] * 30)
    auth = _auth(project)
    client = _client(project)
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    assert _readable(client, auth, project) == [image_id]
    films = client.get(f"/api/images/{image_id}/related", headers=auth).json()["films"]
    assert [f["image_id"] for f in films] == [image_id]


def test_patient_with_too_many_films_links_nothing(tmp_path):
    n = MAX_RELATED_FILMS + 1
    project, _ = _project(tmp_path, n=n + 4, patients=["P1"] * n + ["P2"] * 4)
    auth = _auth(project)
    client = _client(project)
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    table = {i: p for i, _, _, p in project.image_table()}
    readable = _readable(client, auth, project)
    if table[image_id] == "P1":
        assert readable == [image_id]
    else:  # a patient with 4 films: they stay linked
        assert sorted(readable) == sorted(i for i, p in table.items() if p == "P2")


# -- 4. a failed round is visible, and tried again -------------------------------------


def _failing_training(monkeypatch, fail_times):
    calls = []

    def train(project, run):
        calls.append(time.monotonic())
        if len(calls) <= fail_times:
            raise OSError(28, "No space left on device")
        return None

    monkeypatch.setattr(_scheduler, "RETRY_FIRST_SECONDS", 0.2)
    state = _scheduler.TrainingState(train)
    state.background = True  # no worker process: the fake train needs none
    return state, calls


def test_failed_round_is_retried_with_backoff(monkeypatch):
    state, calls = _failing_training(monkeypatch, fail_times=2)
    try:
        state.notify(None)
        deadline = time.monotonic() + 10
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) == 3, "a failed round was not tried again without a new label"
        assert calls[2] - calls[1] >= 1.5 * (calls[1] - calls[0]) > 0  # the wait doubles
        deadline = time.monotonic() + 5
        while state.error is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state.error is None and state.as_dict()["error"] is None
    finally:
        state.close()


def test_failed_round_is_shown_in_status_and_to_raters(tmp_path, monkeypatch):
    project, _ = _project(tmp_path, n=20, initial_size=5, reserve_size=0)
    state, _ = _failing_training(monkeypatch, fail_times=100)
    monkeypatch.setattr(_scheduler, "RETRY_FIRST_SECONDS", 60)
    project.training = state
    auth = _auth(project)
    client = _client(project)
    try:
        state.round = 1
        state.notify(project)
        deadline = time.monotonic() + 5
        while state.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        error = client.get("/api/status", headers=auth).json()["training"]["error"]
        assert error["round"] == 1
        assert "No space left on device" in error["cause"] and "\n" not in error["cause"]
        assert error["retry_in"] > 0
        for _ in range(20):  # the whole batch
            nxt = client.get("/api/next", headers=auth).json()
            if nxt["image_id"] is None:
                break
            client.post(
                "/api/labels", json={"image_id": nxt["image_id"], "label": "normal"}, headers=auth
            )
        nxt = client.get("/api/next", headers=auth).json()
        assert nxt["reason"] == "waiting"
        assert "No space left on device" in nxt["training_error"]["cause"]
    finally:
        state.close()


def test_status_page_and_rater_page_show_the_failure():
    from skal_cxr.labeling.web._routes import static_dir

    static = static_dir()
    assert "training-error" in (static / "status.html").read_text()
    assert "t.error" in (static / "status.js").read_text()
    assert "training_error" in (static / "rater.js").read_text()


# -- 5. leases and bodies ------------------------------------------------------------------


def test_release_gives_held_images_back(tmp_path):
    project, _ = _project(tmp_path, n=20, initial_size=6)
    alice, bob = _auth(project, "alice"), _auth(project, "bob")
    client = _client(project)
    nxt = client.get("/api/next?ahead=2", headers=alice).json()
    held = [nxt["image_id"], *nxt["ahead"]]
    assert len(held) == 3
    r = client.post("/api/release", json={}, headers=alice)
    assert r.status_code == 200 and sorted(r.json()["released"]) == sorted(held)
    got = [client.get("/api/next?ahead=2", headers=bob).json()]
    assert [got[0]["image_id"], *got[0]["ahead"]] == held  # the same images, in order
    assert client.post("/api/release", json={}, headers=alice).json()["released"] == []


def test_rater_page_releases_on_pagehide():
    from skal_cxr.labeling.web._routes import static_dir

    js = (static_dir() / "rater.js").read_text()
    assert "pagehide" in js and "/api/release" in js and "keepalive" in js


@pytest.mark.parametrize(
    "raw",
    [
        b'{"image_id": "1", "label": "\xff\xfe"}',  # invalid UTF-8
        b'{"image_id": ' + b"[" * 20_000 + b"]" * 20_000 + b', "label": "normal"}',
        b'{"image_id": "1", "label": "normal", "seconds": ' + b"7" * 5000 + b"}",
    ],
    ids=["utf8", "nesting", "digits"],
)
def test_unparseable_bodies_are_422(tmp_path, raw):
    project, _ = _project(tmp_path)
    auth = _auth(project)
    client = _client(project)
    r = client.post(
        "/api/labels", content=raw, headers={**auth, "Content-Type": "application/json"}
    )
    _json_error(r, 422)
    assert client.get("/api/me", headers=auth).status_code == 200


def test_bodies_are_authenticated_before_they_are_parsed(tmp_path):
    project, _ = _project(tmp_path)
    client = _client(project)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = client.post(
            "/api/labels",
            content=b"{not json",
            headers={**headers, "Content-Type": "application/json"},
        )
        _json_error(r, 401)


def test_large_bodies_are_413_before_reading(tmp_path):
    project, _ = _project(tmp_path)
    auth = _auth(project)
    client = _client(project)
    big = b'{"image_id": "1", "label": "normal", "note": "' + b"x" * MAX_BODY_BYTES + b'"}'
    for headers in (auth, {}):
        r = client.post(
            "/api/labels", content=big, headers={**headers, "Content-Type": "application/json"}
        )
        _json_error(r, 413)

    sent = []

    def chunks():  # no Content-Length: the bytes are counted as they come
        for _ in range(64):
            sent.append(1)
            yield b" " * (MAX_BODY_BYTES // 8)

    r = client.post(
        "/api/labels", content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    _json_error(r, 413)
    assert client.get("/api/me", headers=auth).status_code == 200


def test_label_of_a_film_that_is_gone_is_refused(tmp_path):
    project, folder = _project(tmp_path)
    auth = _auth(project)
    client = _client(project)
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    rel = {i: r for i, r, _, _ in project.image_table()}[image_id]
    (folder / rel).unlink()
    r = client.post("/api/labels", json={"image_id": image_id, "label": "normal"}, headers=auth)
    assert "gone" in _json_error(r, 409, 410)
    assert project.labels() == []


def test_symlink_out_of_the_folder_is_named_by_init(tmp_path):
    from skal_cxr.labeling.store._image_files import find_images

    folder = tmp_path / "images"
    write_phantoms(folder, n=3)
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(outside)
    (folder / "link.png").symlink_to(outside)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = find_images(folder)
    assert [r for r, _ in rows] == ["im000.png", "im001.png", "im002.png"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "link.png" in messages[0] and "\n" not in messages[0]


@pytest.mark.slow
def test_closing_the_rater_page_gives_its_images_back(tmp_path, browser):
    """Chromium on a real server: the images a closed tab held are free at once."""
    import sqlite3

    from _browser import Server

    project, _ = _project(tmp_path, n=20, initial_size=6, lease_seconds=3600)
    token = project.add_rater("alice")
    project.add_rater("bob")
    server = Server(project.path).start()
    db = project.path / "project.sqlite"

    def open_held():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM assignments WHERE state = 'open'").fetchone()[
                0
            ]

    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.base}/#token={token}")
        page.wait_for_selector(".class-button:not([disabled])", timeout=30_000)
        deadline = time.monotonic() + 10
        while open_held() < 3 and time.monotonic() < deadline:  # the shown one, the next two
            time.sleep(0.1)
        assert open_held() == 3
        page.close()
        deadline = time.monotonic() + 10
        while open_held() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_held() == 0
        context.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_film_garbled_after_init_shows_on_both_pages(tmp_path, browser):
    """A real server: the failed round is on the status page and on the rater's page."""
    import urllib.request

    from _browser import Server

    project, folder = _project(tmp_path, n=20, initial_size=5, reserve_size=0)
    token = project.add_rater("alice")
    rel = project.image_table()[-1][1]
    (folder / rel).write_bytes(b"not an image any more")
    server = Server(project.path).start()

    def call(path, body=None):
        request = urllib.request.Request(
            server.base + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    try:
        for _ in range(20):  # the whole first batch
            nxt = call("/api/next")
            if nxt["image_id"] is None:
                break
            call("/api/labels", {"image_id": nxt["image_id"], "label": CLASSES[0]})
        deadline = time.monotonic() + 120
        while call("/api/status")["training"]["error"] is None:
            assert time.monotonic() < deadline, "the failed round never showed"
            time.sleep(0.5)
        error = call("/api/status")["training"]["error"]
        assert error["round"] is not None and "\n" not in error["cause"]
        assert call("/api/next")["training_error"]["cause"] == error["cause"]
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server.base}/status#token={token}")
        page.wait_for_selector("#training-error:not([hidden])", timeout=15_000)
        assert "failed" in page.text_content("#training-error")
        page.goto(f"{server.base}/#token={token}")
        page.wait_for_selector("#message.error", timeout=15_000)
        assert "failed" in page.text_content("#message")
        context.close()
    finally:
        server.stop()

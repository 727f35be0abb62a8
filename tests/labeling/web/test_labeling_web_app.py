"""The JSON API: authentication, headers, errors and the labeling calls."""

import sqlite3

import numpy as np
import pytest

pytest.importorskip("fastapi")
from _labeling_fakes import CLASSES, truth_of  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import (
    LabelingError,  # noqa: E402
    create_app,  # noqa: E402
)
from skal_cxr.labeling.web._app import is_loopback, serve  # noqa: E402


@pytest.fixture
def served(make_project):
    project = make_project()
    tokens = {name: project.add_rater(name) for name in ("alice", "bob")}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    return project, client, {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


def test_health_needs_no_token_and_everything_else_does(served):
    _, client, auth = served
    assert client.get("/api/health").json() == {"status": "UP"}
    for method, url, body in [
        ("get", "/api/me", None),
        ("get", "/api/next", None),
        ("get", "/api/status", None),
        ("get", "/api/images/1", None),
        ("get", "/api/images/1/pixels", None),
        ("post", "/api/labels", {"image_id": "1", "label": "normal"}),
        ("post", "/api/skip", {"image_id": "1"}),
        ("post", "/api/undo", {"label_id": 1}),
        ("get", "/api/nothing-here", None),
    ]:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic eDp5"},
            {"Authorization": auth["alice"]["Authorization"][:-1]},
        ):
            r = getattr(client, method)(url, headers=headers, **({"json": body} if body else {}))
            assert r.status_code == 401, (url, headers, r.status_code)
            assert "detail" in r.json() and r.headers["cache-control"] == "no-store"
    r = client.get("/api/me", headers=auth["alice"])
    assert r.status_code == 200
    assert r.json() == {
        "rater": "alice",
        "project": "project",
        "classes": CLASSES,
        "show_prediction": False,
        "labels_per_image": 1,
        "role": "rater",
        "adjudicate": False,
    }
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"


def test_tokens_are_stored_hashed(served):
    project, _, auth = served
    token = auth["alice"]["Authorization"].split()[1]
    raw = (project.path / "project.sqlite").read_bytes()
    assert token.encode() not in raw
    assert project.rater_for_token(token) == "alice" and project.rater_for_token("x") is None


def test_label_round_trip_and_errors(served, phantom_folder):
    project, client, auth = served
    nxt = client.get("/api/next", headers=auth["alice"]).json()
    assert nxt["reason"] is None and nxt["round"] == 0 and nxt["from_previous_model"] is False
    assert nxt["batch"] == {"done": 0, "total": 5, "mine": {"done": 0, "total": 5}}
    assert nxt["prediction"] is None and nxt["waiting_for"] is None
    assert nxt["progress"] == {
        "labeled": 0,
        "queried": 5,
        "total": 60,
        "budget": None,
        "awaiting_adjudication": 0,
    }
    image_id = nxt["image_id"]
    # the same image again until it is labeled (a reload does not lose it)
    assert client.get("/api/next", headers=auth["alice"]).json()["image_id"] == image_id
    label = truth_of(project, phantom_folder[1], image_id)
    bad = client.post(
        "/api/labels", headers=auth["alice"], json={"image_id": image_id, "label": "pneumothorax"}
    )
    assert bad.status_code == 422 and "normal" in bad.json()["detail"]
    other = client.post(
        "/api/labels", headers=auth["bob"], json={"image_id": image_id, "label": label}
    )
    assert other.status_code == 409
    form = client.post(
        "/api/labels", headers=auth["alice"], data={"image_id": image_id, "label": label}
    )
    assert form.status_code == 415
    r = client.post(
        "/api/labels",
        headers=auth["alice"],
        json={"image_id": image_id, "label": label, "seconds": 2.5, "note": "ok"},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["image_id"] == image_id and body["label"] == label and body["label_id"] == 1
    again = client.post(
        "/api/labels", headers=auth["alice"], json={"image_id": image_id, "label": label}
    )
    assert again.status_code == 409
    [row] = project.labels()
    assert (
        row["rater"],
        row["label"],
        row["seconds"],
        row["note"],
        row["round"],
        row["queue_kind"],
    ) == ("alice", label, 2.5, "ok", 0, "batch")


def test_undo_only_own_label_and_the_image_comes_back(served):
    project, client, auth = served
    image_id = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    label_id = client.post(
        "/api/labels", headers=auth["alice"], json={"image_id": image_id, "label": "normal"}
    ).json()["label_id"]
    assert client.get("/api/next", headers=auth["alice"]).json()["image_id"] != image_id
    r = client.post("/api/undo", headers=auth["bob"], json={"label_id": label_id})
    assert r.status_code == 403
    assert (
        client.post("/api/undo", headers=auth["alice"], json={"label_id": 999}).status_code == 404
    )
    assert (
        client.post(
            "/api/undo", headers=auth["alice"], json={"label_id": "1; DROP TABLE labels"}
        ).status_code
        == 422
    )
    r = client.post("/api/undo", headers=auth["alice"], json={"label_id": label_id})
    assert r.status_code == 200
    assert r.json() == {"label_id": label_id, "undone": True, "image_id": image_id}
    assert client.post(
        "/api/undo", headers=auth["alice"], json={"label_id": label_id}
    ).status_code in (404, 409)
    assert client.get("/api/next", headers=auth["alice"]).json()["image_id"] == image_id
    r = client.post(
        "/api/labels", headers=auth["alice"], json={"image_id": image_id, "label": "severe"}
    )
    assert r.status_code == 201
    rows = project.labels()
    assert [(x["label"], x["supersedes"]) for x in rows] == [
        ("normal", None),
        (None, label_id),
        ("severe", None),
    ]
    assert project.status()["raters"] == [
        {"name": "alice", "n_labels": 1},
        {"name": "bob", "n_labels": 0},
    ]


def test_skip_hands_the_image_to_someone_else(served):
    project, client, auth = served
    image_id = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    r = client.post("/api/skip", headers=auth["alice"], json={"image_id": image_id})
    assert r.status_code == 200 and r.json() == {"image_id": image_id, "skipped": True}
    assert client.get("/api/next", headers=auth["alice"]).json()["image_id"] != image_id
    assert client.get("/api/next", headers=auth["bob"]).json()["image_id"] == image_id


@pytest.mark.parametrize(
    "image_id",
    [
        "../project.sqlite",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2fproject.sqlite",
        "/etc/passwd",
        "im000.png",
        "0",
        "61",
        "1e3",
        "-1",
        "١",
        "99999999999999999999",
        " 1",
    ],
)
def test_path_like_or_unknown_image_ids_are_404(served, image_id):
    _, client, auth = served
    for suffix in ("", "/pixels"):
        r = client.get(f"/api/images/{image_id}{suffix}", headers=auth["alice"])
        assert r.status_code == 404, (image_id, suffix, r.status_code)
        assert r.headers["content-type"].startswith("application/json")
    r = client.post(
        "/api/labels", headers=auth["alice"], json={"image_id": image_id, "label": "normal"}
    )
    assert r.status_code in (404, 409)


def test_images_png_and_pixels(served, phantom_folder):
    project, client, auth = served
    from PIL import Image

    image_id = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    png = client.get(f"/api/images/{image_id}", headers=auth["alice"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    raw = client.get(f"/api/images/{image_id}/pixels", headers=auth["alice"])
    assert raw.headers["content-type"] == "application/octet-stream"
    w, h = int(raw.headers["x-image-width"]), int(raw.headers["x-image-height"])
    pixels = np.frombuffer(raw.content, dtype="<u2").reshape(h, w)
    rel = dict((i, r) for i, r, _, _ in project.image_table())[image_id]
    original = np.asarray(Image.open(phantom_folder[0] / rel), dtype=np.int64)
    assert np.array_equal(pixels, original - original.min())
    assert float(raw.headers["x-window-width"]) == original.max() - original.min()


def test_wrong_host_header_is_refused(served):
    _, client, auth = served
    r = client.get("/api/health", headers={"Host": "evil.example"})
    assert r.status_code == 400


def test_pages_are_served_without_data(served):
    _, client, _ = served
    for url in ("/", "/status"):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("::", False),
        ("example.org", False),
    ],
)
def test_non_loopback_bind_is_refused_without_the_flag(make_project, host, loopback):
    assert is_loopback(host) is loopback
    if not loopback:
        project = make_project()
        with pytest.raises(LabelingError, match="allow-remote"):
            serve(project, host, 8765)


@pytest.mark.parametrize("show", [False, True])
def test_prediction_is_shown_only_when_the_project_says_so(make_project, phantom_folder, show):
    """Hidden by default (it biases raters); the project option shows the latest model's."""
    from skal_cxr.labeling.worker._rounds import train_next_round

    project = make_project(show_prediction=show, reserve_size=0)
    auth = {"Authorization": f"Bearer {project.add_rater('alice')}"}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    assert client.get("/api/me", headers=auth).json()["show_prediction"] is show
    assert client.get("/api/next", headers=auth).json()["prediction"] is None  # no model yet
    while (nxt := project.next_image("alice"))["image_id"] is not None:
        project.submit_label(
            "alice", nxt["image_id"], truth_of(project, phantom_folder[1], nxt["image_id"])
        )
    train_next_round(project)
    nxt = client.get("/api/next", headers=auth).json()
    assert nxt["image_id"] is not None
    if not show:
        assert nxt["prediction"] is None
        return
    prediction = nxt["prediction"]
    assert set(prediction["probabilities"]) == set(CLASSES)
    assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert prediction["class"] == max(
        prediction["probabilities"], key=prediction["probabilities"].get
    )


def test_a_wildcard_bind_checks_the_public_host_name(make_project, capsys):
    """--host 0.0.0.0 --allow-remote checks Host against --public-host; never turns it off."""
    from skal_cxr.cli import main
    from skal_cxr.labeling.web._app import _allowed_hosts

    with pytest.raises(LabelingError, match="--public-host"):
        _allowed_hosts("0.0.0.0")
    assert _allowed_hosts("0.0.0.0", "labels.example.org") == ["labels.example.org"]
    assert _allowed_hosts("192.168.1.5", "labels.example.org") == [
        "192.168.1.5",
        "labels.example.org",
    ]
    project = make_project()
    auth = {"Authorization": f"Bearer {project.add_rater('alice')}"}
    app = create_app(
        project, allowed_hosts=_allowed_hosts("0.0.0.0", "labels.example.org"), background=False
    )
    good = TestClient(app, base_url="http://labels.example.org:8765")
    assert good.get("/api/me", headers=auth).status_code == 200
    for host in ("evil.example", "attacker.test:8765", "192.168.1.5"):
        assert TestClient(app, base_url=f"http://{host}").get("/api/health").status_code == 400
    capsys.readouterr()
    assert main(["label", "serve", str(project.path), "--host", "0.0.0.0", "--allow-remote"]) == 2
    err = capsys.readouterr().err
    assert "--public-host" in err and err.count("\n") == 1


@pytest.mark.parametrize("ends", ["returns", "raises"])
def test_serve_ends_its_training_worker_however_uvicorn_ends(make_project, monkeypatch, ends):
    """The worker started at ``serve`` ends with it, also when uvicorn never ran the lifespan."""
    import threading

    import uvicorn

    project = make_project()
    started = {}

    def run(app, **options):  # in place of uvicorn.run: exits before any lifespan
        started["thread"] = project.training._thread
        started["trainer"] = project.training.trainer
        if ends == "raises":
            raise SystemExit(1)  # as uvicorn does when its start-up fails

    monkeypatch.setattr(uvicorn, "run", run)
    if ends == "raises":
        with pytest.raises(SystemExit):
            serve(project, "127.0.0.1", 8765)
    else:
        serve(project, "127.0.0.1", 8765)
    assert isinstance(started["thread"], threading.Thread)
    assert not started["thread"].is_alive()  # no thread left to write at interpreter exit
    assert started["trainer"]._process is None and started["trainer"]._closed
    assert not project.training.background and project.training._thread is None


def test_the_server_reuses_its_database_connections_while_it_runs(make_project):
    project = make_project()
    token = project.add_rater("alice")
    app = create_app(project, allowed_hosts=["testserver"], background=False)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:  # runs the app's lifespan, as the server does
        first = client.get("/api/next", headers=headers).json()["image_id"]
        kept = list(project.db._kept.idle)
        assert kept  # the request's connection stayed open for the next one
        assert client.get("/api/next", headers=headers).json()["image_id"] == first
        assert project.db._kept.idle == kept  # the same connection, not a new one
    assert project.db._kept is None  # closed with the server
    with pytest.raises(sqlite3.ProgrammingError):
        kept[0].execute("SELECT 1")


def test_an_adjudication_s_seconds_are_checked_and_stored(make_project):
    project = make_project(labels_per_image=2, consensus="adjudicate")
    tokens = {n: project.add_rater(n) for n in ("alice", "bob")}
    tokens["carol"] = project.add_rater("carol", role="adjudicator")
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    auth = {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}
    image_id = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    for name, label in (("alice", "normal"), ("bob", "severe")):
        client.get("/api/next", headers=auth[name])
        body = {"image_id": image_id, "label": label}
        assert client.post("/api/labels", headers=auth[name], json=body).status_code == 201
    assert client.get("/api/adjudication/next", headers=auth["carol"]).json()["image_id"] == (
        image_id
    )
    decision = {"image_id": image_id, "label": "moderate"}
    for seconds in (-1, "soon"):
        r = client.post(
            "/api/adjudications", headers=auth["carol"], json={**decision, "seconds": seconds}
        )
        assert r.status_code == 422, r.text
    r = client.post("/api/adjudications", headers=auth["carol"], json={**decision, "seconds": 6.5})
    assert r.status_code == 201, r.text
    with project.db.connect() as conn:
        assert [tuple(r) for r in conn.execute("SELECT label, seconds FROM adjudications")] == [
            ("moderate", 6.5)
        ]

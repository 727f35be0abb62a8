"""A rater's token reads only the images that concern that rater (403 otherwise)."""

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import create_app  # noqa: E402


@pytest.fixture
def served(make_project):
    project = make_project(labels_per_image=2, consensus="adjudicate")
    tokens = {name: project.add_rater(name) for name in ("alice", "bob")}
    tokens["carol"] = project.add_rater("carol", role="adjudicator")
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    return project, client, {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


def _reads(client, auth, image_id):
    codes = {
        client.get(f"/api/images/{image_id}{suffix}", headers=auth).status_code
        for suffix in ("", "/pixels", "/pixels?format=png&max_size=64")
    }
    assert len(codes) == 1, codes
    return codes.pop()


def test_unassigned_images_are_403(served):
    project, client, auth = served
    first = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    assert _reads(client, auth["alice"], first) == 200
    others = [i for i, *_ in project.image_table() if i != first]
    for image_id in others[:3]:  # in the pool, not assigned to alice
        assert _reads(client, auth["alice"], image_id) == 403
        assert (
            "not assigned to you"
            in client.get(f"/api/images/{image_id}", headers=auth["alice"]).json()["detail"]
        )
    assert _reads(client, auth["bob"], first) == 403  # alice's image, not bob's (yet)
    assert _reads(client, auth["alice"], "99999") == 404


def test_labeled_images_stay_readable_and_skipped_ones_do_not(served):
    _, client, auth = served
    first = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    client.post(
        "/api/labels", json={"image_id": first, "label": "normal"}, headers=auth["alice"]
    ).raise_for_status()
    assert _reads(client, auth["alice"], first) == 200
    second = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    client.post("/api/skip", json={"image_id": second}, headers=auth["alice"])
    assert _reads(client, auth["alice"], second) == 403


def test_an_adjudicator_reads_the_images_under_review(served):
    project, client, auth = served
    disputed = None
    for label in ("normal", "severe"):  # alice and bob disagree on one image
        rater = "alice" if label == "normal" else "bob"
        image_id = client.get("/api/next", headers=auth[rater]).json()["image_id"]
        disputed = disputed or image_id
        assert image_id == disputed
        client.post(
            "/api/labels", json={"image_id": image_id, "label": label}, headers=auth[rater]
        ).raise_for_status()
    assert _reads(client, auth["carol"], disputed) == 200
    client.post(
        "/api/adjudications", json={"image_id": disputed, "label": "severe"}, headers=auth["carol"]
    ).raise_for_status()
    assert _reads(client, auth["carol"], disputed) == 200  # decided by carol
    other = client.get("/api/next", headers=auth["alice"]).json()["image_id"]
    assert _reads(client, auth["carol"], other) == 403

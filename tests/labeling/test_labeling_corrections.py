"""Corrections: any of one's own labels, an adjudicator's deferrals and revisions."""

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.exceptions import Conflict, Forbidden, InvalidLabel  # noqa: E402
from skal_cxr.labeling import create_app  # noqa: E402
from skal_cxr.labeling.read._export import audit_events  # noqa: E402


def _label(project, rater, label):
    image_id = project.next_image(rater)["image_id"]
    return project.submit_label(rater, image_id, label)


def test_a_rater_corrects_any_of_their_labels_not_only_the_latest(make_project):
    project = make_project()
    project.add_rater("alice")
    project.add_rater("bob")
    first = _label(project, "alice", "normal")
    second = _label(project, "alice", "moderate")
    third = _label(project, "alice", "severe")
    mine = project.rater_labels("alice")
    assert [m["label_id"] for m in mine] == [
        third["label_id"],
        second["label_id"],
        first["label_id"],
    ]  # most recent first
    out = project.correct_label("alice", first["label_id"], "severe", note="missed it")
    assert out["previous_label"] == "normal" and out["label"] == "severe"
    assert out["supersedes"] == first["label_id"] and out["image_id"] == first["image_id"]
    mine = project.rater_labels("alice")
    assert [(m["image_id"], m["label"]) for m in mine] == [
        (first["image_id"], "severe"),
        (third["image_id"], "severe"),
        (second["image_id"], "moderate"),
    ]
    ids, codes = project.labeled_set()
    assert dict(zip(ids.tolist(), codes.tolist()))[int(first["image_id"])] == 2
    with pytest.raises(Conflict):  # superseded: correct the standing one
        project.correct_label("alice", first["label_id"], "moderate")
    with pytest.raises(InvalidLabel):
        project.correct_label("alice", out["label_id"], "huge")
    with pytest.raises(InvalidLabel):
        project.correct_label("alice", out["label_id"], "severe")  # no change
    with pytest.raises(Forbidden):
        project.correct_label("bob", second["label_id"], "normal")
    events = audit_events(project)
    assert all(  # the label events of earlier versions, unchanged
        "scores" not in e for e in events if e["event"] in ("label", "undo", "correction")
    )
    history = [e for e in events if e["event"] == "correction"]
    assert len(history) == 1
    assert (history[0]["previous_label"], history[0]["label"]) == ("normal", "severe")
    assert history[0]["rater"] == "alice" and history[0]["note"] == "missed it"
    with project.db.connect() as conn:  # append-only: the old row is still there
        row = conn.execute("SELECT label FROM labels WHERE id = ?", (first["label_id"],))
        assert row.fetchone()[0] == "normal"


@pytest.fixture
def disputed(make_project):
    project = make_project(labels_per_image=2, consensus="adjudicate")
    for name in ("alice", "bob"):
        project.add_rater(name)
    project.add_rater("carol", role="adjudicator")
    films = []
    for a, b in [("normal", "severe"), ("normal", "moderate"), ("moderate", "severe")]:
        films.append(_label(project, "alice", a)["image_id"])
        _label(project, "bob", b)
    return project, films


def test_an_adjudicator_defers_a_dispute_to_the_end_of_their_queue(disputed):
    project, films = disputed
    assert project.next_adjudication("carol")["image_id"] == films[0]
    with pytest.raises(InvalidLabel):
        project.defer_adjudication("carol", films[0], "")  # a reason is needed
    with pytest.raises(Forbidden):
        project.defer_adjudication("alice", films[0], "ask the CT")
    project.defer_adjudication("carol", films[0], "wait for the CT report")
    nxt = project.next_adjudication("carol")
    assert nxt["image_id"] == films[1] and nxt["pending"] == 3
    project.defer_adjudication("carol", films[1], "lateral film?")
    assert project.next_adjudication("carol")["image_id"] == films[2]
    project.adjudicate("carol", films[2], "severe")
    assert project.next_adjudication("carol")["image_id"] == films[0]  # oldest deferral first
    nxt = project.next_adjudication("carol")
    assert nxt["deferred"] == {
        "reason": "wait for the CT report",
        "created_at": nxt["deferred"]["created_at"],
    }
    events = [e for e in audit_events(project) if e["event"] == "deferral"]
    assert [(e["image_id"], e["reason"], e["rater"]) for e in events] == [
        (films[0], "wait for the CT report", "carol"),
        (films[1], "lateral film?", "carol"),
    ]


def test_an_adjudicator_revises_a_decision_and_the_revision_is_audited(disputed):
    project, films = disputed
    project.adjudicate("carol", films[0], "moderate")
    with pytest.raises(Conflict):
        project.adjudicate("carol", films[0], "severe")  # decided: revise instead
    out = project.revise_adjudication("carol", films[0], "severe", note="CT shows consolidation")
    assert out["previous_label"] == "moderate" and out["label"] == "severe"
    ids, codes = project.labeled_set()
    assert dict(zip(ids.tolist(), codes.tolist()))[int(films[0])] == 2
    with pytest.raises(Conflict):
        project.revise_adjudication("carol", films[1], "severe")  # never decided
    with pytest.raises(InvalidLabel):
        project.revise_adjudication("carol", films[0], "severe")  # no change
    with pytest.raises(Forbidden):
        project.revise_adjudication("bob", films[0], "normal")
    events = audit_events(project)
    assert all("supersedes" not in e for e in events if e["event"] == "adjudication")
    revisions = [e for e in events if e["event"] == "adjudication_revision"]
    assert [(e["previous_label"], e["label"], e["note"]) for e in revisions] == [
        ("moderate", "severe", "CT shows consolidation")
    ]
    decisions = project.rater_decisions("carol")
    assert [(d["image_id"], d["label"]) for d in decisions] == [(films[0], "severe")]


def test_the_api_lists_and_corrects_labels_and_defers_and_revises(disputed):
    project, films = disputed
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    token = project.add_rater("erin", role="adjudicator")
    auth = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/labels/mine", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"labels": [], "decisions": []}
    r = client.post(
        "/api/adjudication/defer", json={"image_id": films[0], "reason": "CT"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/adjudication/next", headers=auth).json()["image_id"] == films[1]
    r = client.post(
        "/api/adjudications", json={"image_id": films[1], "label": "normal"}, headers=auth
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/adjudications/revise",
        json={"image_id": films[1], "label": "moderate", "note": "second look"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["previous_label"] == "normal"
    mine = client.get("/api/labels/mine", headers=auth).json()
    assert [(d["image_id"], d["label"]) for d in mine["decisions"]] == [(films[1], "moderate")]
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    label_id = client.post(
        "/api/labels", json={"image_id": image_id, "label": "normal"}, headers=auth
    ).json()["label_id"]
    r = client.post(
        "/api/labels/correct", json={"label_id": label_id, "label": "severe"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["previous_label"] == "normal"
    mine = client.get("/api/labels/mine", headers=auth).json()
    assert [(m["image_id"], m["label"]) for m in mine["labels"]] == [(image_id, "severe")]

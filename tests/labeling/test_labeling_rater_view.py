"""What a rater is told: his share of the batch, what he waits for, settled counts, blinding.

And what the labels CSV keeps of a reading: every reading's seconds, the study date.
"""

import csv

import pytest

pytest.importorskip("fastapi")
from _labeling_fakes import CLASSES  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import create_app  # noqa: E402


@pytest.fixture
def study(make_project):
    """Two raters reading every film, an adjudicator deciding their disagreements."""
    project = make_project(query_size=3, labels_per_image=2, consensus="adjudicate")
    tokens = {n: project.add_rater(n) for n in ("alice", "bob")}
    tokens["carol"] = project.add_rater("carol", role="adjudicator")
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    return project, client, {n: {"Authorization": f"Bearer {t}"} for n, t in tokens.items()}


def _label(client, auth, label, seconds=None):
    nxt = client.get("/api/next", headers=auth).json()
    if nxt["image_id"] is None:
        return nxt, None
    r = client.post(
        "/api/labels",
        headers=auth,
        json={"image_id": nxt["image_id"], "label": label, "seconds": seconds},
    )
    assert r.status_code == 201, r.text
    return nxt, r.json()


def test_a_rater_who_finished_his_share_sees_it_and_what_he_waits_for(study):
    project, client, auth = study
    while _label(client, auth["alice"], CLASSES[0])[1] is not None:
        pass  # the batch, then the reserve shown while others label
    nxt = client.get("/api/next", headers=auth["alice"]).json()
    assert nxt["reason"] == "waiting"
    assert nxt["batch"]["done"] == 0  # bob has labeled nothing yet
    assert nxt["batch"]["mine"] == {"done": 3, "total": 3}  # but alice's share is done
    assert nxt["waiting_for"] == "raters"  # not "the model is training"


def test_labeled_counts_settled_labels_only(study):
    project, client, auth = study
    first, _ = _label(client, auth["alice"], CLASSES[0])
    nxt, _ = _label(client, auth["bob"], CLASSES[2])  # disagrees: waits for carol
    assert nxt["image_id"] == first["image_id"]
    second, _ = _label(client, auth["alice"], CLASSES[1])
    _label(client, auth["bob"], CLASSES[1])  # agrees: settled
    prog = client.get("/api/next", headers=auth["alice"]).json()["progress"]
    assert prog["labeled"] == 1 == len(project.labeled_set()[0])
    assert prog["awaiting_adjudication"] == 1
    assert project.progress()["progress"]["labeled"] == 1


def test_status_shows_pairwise_agreement_to_adjudicators_only(study):
    project, client, auth = study
    _label(client, auth["alice"], CLASSES[0])
    _label(client, auth["bob"], CLASSES[2])
    seen = client.get("/api/status", headers=auth["alice"]).json()
    assert seen["blinded"] is True
    assert seen["raters"] == [{"name": "alice", "n_labels": 1}]
    assert seen["agreement"] is None and seen["kappa"] is None
    full = client.get("/api/status", headers=auth["carol"]).json()
    assert [r["name"] for r in full["raters"]] == ["alice", "bob", "carol"]
    assert full["agreement"]["pairs"][0]["raters"] == ["alice", "bob"]
    assert "blinded" not in full


def test_the_csv_counts_the_time_before_an_undo_and_exports_the_study_date(make_project, tmp_path):
    project = make_project(query_size=3)
    project.add_rater("alice")
    nxt = project.next_image("alice")
    first = project.submit_label("alice", nxt["image_id"], CLASSES[0], seconds=4.0)
    project.undo("alice", first["label_id"])
    again = project.next_image("alice")
    assert again["image_id"] == nxt["image_id"]
    project.submit_label("alice", nxt["image_id"], CLASSES[1], seconds=1.5)
    with project.db.connect() as conn:
        conn.execute("UPDATE images SET study_date = '20240301' WHERE id = ?", (nxt["image_id"],))
        conn.commit()
    project.export(tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert rows[0]["rater_alice"] == CLASSES[1]
    assert float(rows[0]["seconds_alice"]) == 5.5  # 4 s before the undo, 1.5 s after
    assert rows[0]["study_date"] == "20240301"


def test_the_film_after_the_batch_end_is_announced_for_prefetch(make_project):
    project = make_project(query_size=3)
    auth = {"Authorization": f"Bearer {project.add_rater('alice')}"}
    client = TestClient(create_app(project, allowed_hosts=["testserver"], background=False))
    seen = []
    for _ in range(3):  # the batch: the last film announces the reserve film after it
        nxt = client.get("/api/next?ahead=1", headers=auth).json()
        seen.append((nxt["image_id"], nxt["ahead"], nxt["from_previous_model"]))
        r = client.post(
            "/api/labels", headers=auth, json={"image_id": nxt["image_id"], "label": CLASSES[0]}
        )
        assert r.status_code == 201
    assert all(ahead for _, ahead, _ in seen)  # always one film ahead, at the end too
    last_ahead = seen[-1][1][0]
    after = client.get("/api/next?ahead=1", headers=auth).json()
    assert after["image_id"] == last_ahead and after["from_previous_model"]

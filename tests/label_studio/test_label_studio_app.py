"""The backend's protocol through FastAPI's TestClient: known answers on fixed MC samples."""

import json

import numpy as np
import pytest
from _ls_tasks import CONFIG, annotation_event

from skal_cxr import MCDropoutCNN
from skal_cxr.label_studio import Backend, create_app, load_settings
from skal_cxr.label_studio._backend import COLD_START_VERSION
from skal_cxr.strategies import mean_std_scores

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


def _client(folder):
    backend = Backend(load_settings(folder))
    return backend, TestClient(create_app(backend))


def _setup(client):
    r = client.post(
        "/setup",
        json={"project": "1.1700000000", "schema": CONFIG, "hostname": "", "access_token": ""},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _predict(client, tasks):
    r = client.post(
        "/predict",
        json={"tasks": tasks, "label_config": CONFIG, "project": "1.1700000000", "params": {}},
    )
    assert r.status_code == 200, r.text
    return r.json()


def _annotate(client, tasks, labels, first_id=100):
    for k, (task, label) in enumerate(zip(tasks, labels)):
        event = annotation_event(task, first_id + k, label, f"2026-01-01T00:00:{k:02d}Z")
        r = client.post("/webhook", json=event)
        assert r.status_code == 201, r.text


def test_health_and_setup(backend_dir):
    folder, _, _ = backend_dir
    _, client = _client(folder)
    health = client.get("/health").json()
    assert health["status"] == "UP"
    assert health["model_version"] == COLD_START_VERSION
    assert _setup(client) == {"model_version": COLD_START_VERSION}
    state = json.loads((folder / "state.json").read_text())
    assert state["project"] == "1"
    assert state["control"]["labels"] == ["normal", "pneumonia"]


def test_cold_start_scores_every_task_label_free(backend_dir):
    folder, _, tasks = backend_dir
    _, client = _client(folder)
    _setup(client)
    out = _predict(client, tasks)
    assert out["model_version"] == COLD_START_VERSION
    assert len(out["results"]) == len(tasks)
    scores = [p["score"] for p in out["results"]]
    # the typicality order: ranks 0 .. n-1, each once (lowest: label next)
    assert sorted(scores) == list(range(len(tasks)))
    for p in out["results"]:
        assert p["result"] == []  # no model yet: no class is predicted
        assert p["meta"]["acquisition"]["function"] == "typicality"


def test_scores_of_a_batch_are_those_of_the_whole_pool(backend_dir):
    folder, _, tasks = backend_dir
    _, client = _client(folder)
    _setup(client)
    whole = {p_t["id"]: p["score"] for p_t, p in zip(tasks, _predict(client, tasks)["results"])}
    part = _predict(client, tasks[3:7])["results"]
    assert [p["score"] for p in part] == [whole[t["id"]] for t in tasks[3:7]]


def _fixed_samples(n_images, n_mc=5, seed=3):
    """MC samples of each image (indexed by its first pixel), of distinct spreads."""
    rng = np.random.default_rng(seed)
    p1 = np.clip(
        rng.random((1, n_images)) + rng.normal(0, 1, (n_mc, n_images)) * rng.random(n_images) * 0.3,
        0.01,
        0.99,
    )
    return np.stack([1 - p1, p1], axis=-1).astype(np.float32)


def test_score_order_is_the_acquisition_order_on_fixed_mc_samples(backend_dir, monkeypatch):
    folder, _, tasks = backend_dir
    backend, client = _client(folder)
    _setup(client)
    _annotate(client, tasks[:4], ["normal", "pneumonia", "normal", "pneumonia"])
    assert backend.wait(60)
    assert backend.model_version == "skal_cxr-1"

    samples = _fixed_samples(len(tasks))

    def fixed(self, X, n_mc_samples=None, **kwargs):
        which = np.rint(np.asarray(X)[:, 0, 0, 0] * 255).astype(int)  # image i: pixel i
        return samples[:, which]

    monkeypatch.setattr(MCDropoutCNN, "predict_proba_samples", fixed)
    backend._ranking = None
    out = _predict(client, tasks)
    assert out["model_version"] == "skal_cxr-1"
    scores = np.array([p["score"] for p in out["results"]])
    expected = mean_std_scores(samples)
    np.testing.assert_allclose(scores, -expected, rtol=1e-5)
    # Label Studio sorts ascending: the first task is the most informative
    assert list(np.argsort(scores, kind="stable")) == list(np.argsort(-expected, kind="stable"))
    mean = samples.mean(axis=0)
    for i, p in enumerate(out["results"]):
        (item,) = p["result"]
        assert item["type"] == "choices" and item["from_name"] == "diagnosis"
        assert item["value"]["choices"] == [["normal", "pneumonia"][int(mean[i].argmax())]]
        probs = item["meta"]["probabilities"]
        np.testing.assert_allclose([probs["normal"], probs["pneumonia"]], mean[i], rtol=1e-5)
        assert p["meta"]["acquisition"]["rank"] == int(
            np.argsort(scores, kind="stable").tolist().index(i)
        )


def test_retrains_every_n_annotations(backend_dir):
    folder, _, tasks = backend_dir
    backend, client = _client(folder)
    _setup(client)
    _annotate(client, tasks[:3], ["normal", "pneumonia", "normal"])
    assert backend.wait(60) and backend.model_version == COLD_START_VERSION  # 3 < 4
    _annotate(client, tasks[3:4], ["pneumonia"], first_id=103)
    assert backend.wait(60) and backend.model_version == "skal_cxr-1"
    state = json.loads((folder / "state.json").read_text())
    assert state["model"]["n_annotations"] == 4 and state["changes"] == 0
    assert (folder / "model.joblib").exists()


def test_a_restarted_backend_keeps_every_annotation_and_the_model(backend_dir):
    folder, _, tasks = backend_dir
    backend, client = _client(folder)
    _setup(client)
    _annotate(client, tasks[:5], ["normal", "pneumonia", "normal", "pneumonia", "normal"])
    assert backend.wait(60)
    before = backend.store.consensus()
    again, client2 = _client(folder)  # a new process would read the same folder
    assert again.store.consensus() == before == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert again.model_version == "skal_cxr-1"
    out = _predict(client2, tasks)
    assert all(len(p["result"]) == 1 for p in out["results"])


def test_latest_annotation_is_the_label_and_deletion_forgets(backend_dir):
    folder, _, tasks = backend_dir
    backend, client = _client(folder)
    _setup(client)
    task = tasks[0]
    client.post("/webhook", json=annotation_event(task, 7, "normal", "2026-01-01T00:00:01Z"))
    client.post("/webhook", json=annotation_event(task, 8, "pneumonia", "2026-01-01T00:00:02Z"))
    assert backend.store.consensus() == {"1": 1}
    r = client.post(
        "/webhook",
        json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 8}], "project": {"id": 1}},
    )
    assert r.json()["recorded"] == 1
    assert backend.store.consensus() == {"1": 0}
    update = annotation_event(task, 7, "pneumonia", "2026-01-01T00:00:03Z", "ANNOTATION_UPDATED")
    client.post("/webhook", json=update)
    assert backend.store.consensus() == {"1": 1}


def test_train_endpoint_takes_label_studios_export(backend_dir):
    folder, _, tasks = backend_dir
    backend, client = _client(folder)
    _setup(client)
    export = []
    for k, task in enumerate(tasks[:2]):
        event = annotation_event(task, 50 + k, ["normal", "pneumonia"][k], f"2026-01-0{k + 1}")
        export.append({**task, "annotations": [event["annotation"]]})
    r = client.post(
        "/train", json={"annotations": export, "label_config": CONFIG, "project": "1.1"}
    )
    assert r.status_code == 201 and r.json() == {"job": COLD_START_VERSION}
    assert backend.wait(60) and backend.model_version == "skal_cxr-1"


def test_another_project_is_refused(backend_dir):
    folder, _, tasks = backend_dir
    _, client = _client(folder)
    _setup(client)
    r = client.post(
        "/predict", json={"tasks": tasks[:1], "label_config": CONFIG, "project": "2.17"}
    )
    assert r.status_code == 409 and "project 1" in r.json()["detail"]


def test_a_config_without_choices_is_refused(backend_dir):
    folder, _, _ = backend_dir
    _, client = _client(folder)
    r = client.post(
        "/setup", json={"project": "1.1", "schema": "<View><Image name='i' value='$i'/></View>"}
    )
    assert r.status_code == 422 and "<Choices>" in r.json()["detail"]


def test_an_unreadable_image_gets_an_empty_prediction(backend_dir):
    folder, _, tasks = backend_dir
    _, client = _client(folder)
    _setup(client)
    missing = {"id": 99, "data": {"image": "/data/local-files/?d=images/none.png"}}
    out = _predict(client, tasks[:2] + [missing])
    assert out["results"][2]["result"] == [] and out["results"][2]["score"] is None
    assert "no such image" in out["results"][2]["meta"]["error"]
    assert sorted(p["score"] for p in out["results"][:2]) == [0.0, 1.0]

"""The backend against a real Label Studio (1.23): predictions, retraining, a restart.

Label Studio runs from its own virtualenv (see ``_ls_server``); the test is
skipped, with the reason, where it is not installed (``.ci/run`` installs it).
The REST API is driven with httpx (the API ``label-studio-sdk`` wraps; the SDK
pins exact versions of packages such as ``requests-mock`` and brings OpenCV,
NLTK and pandas, which the test environment does not need).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _ls_server import LabelStudio, executable, free_port, stop, venv, wait_http
from _ls_tasks import CONFIG, FAST_ROUNDS, write_pngs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
N_TASKS = 24


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """A running Label Studio with a folder of PNGs in its local-files root."""
    if executable() is None:
        pytest.skip(
            f"Label Studio is not installed in {venv()} (set SKAL_CXR_LABEL_STUDIO_VENV; "
            ".ci/run installs it: python -m venv DIR && DIR/bin/pip install "
            "'label-studio>=1.23,<1.24' 'sentry-sdk<3')"
        )
    base = tmp_path_factory.mktemp("label-studio")
    write_pngs(base / "root" / "images", N_TASKS, size=32)
    ls = LabelStudio(base / "data", base / "root").start()
    print(f"Label Studio started in {ls.startup_time:.1f} s")
    yield ls
    ls.stop()


class _Backend:
    """``skal-cxr label-studio-backend`` in a child process (so that it can be killed)."""

    def __init__(self, folder, document_root):
        self.folder, self.document_root = folder, document_root
        self.port = free_port()
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] = str(self.document_root)
        log = self.folder.parent / "backend.log"
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "skal_cxr.cli", "label-studio-backend", str(self.folder)]
                + ["--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_http(f"{self.url}/health", 120, self.proc, log)
        return self

    def kill(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def health(self):
        import httpx

        return httpx.get(f"{self.url}/health", timeout=30).json()

    def wait_trained(self, n_labeled, timeout=300):
        """Wait until ``n_labeled`` labels are recorded and no training runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            assert health["error"] is None, health["error"]
            if health["n_labeled"] == n_labeled and not health["is_training"]:
                return health
            time.sleep(1)
        raise TimeoutError(f"not trained within {timeout} s: {self.health()}")


def _label(task):
    """The truth of a task's PNG: even image numbers are dark (normal)."""
    number = int(task["data"]["image"].split("img_")[1][:3])
    return ["normal", "pneumonia"][number % 2]


def _annotate(client, project, task):
    result = [
        {
            "from_name": "diagnosis",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [_label(task)]},
        }
    ]
    r = client.post(
        f"/api/tasks/{task['id']}/annotations", json={"result": result, "project": project}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _retrieve_predictions(client, project):
    r = client.post(
        "/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project},
        json={"selectedItems": {"all": True, "excluded": []}},
    )
    assert r.status_code == 200, r.text


def _ordered(client, view):
    """``[(task id, prediction score)]`` in the Data Manager view's order."""
    r = client.get("/api/tasks", params={"view": view, "page_size": 1000})
    assert r.status_code == 200, r.text
    return [(t["id"], t["predictions_score"]) for t in r.json()["tasks"]]


def test_label_studio_sorts_tasks_by_the_backends_acquisition(label_studio, tmp_path):
    ls, client = label_studio, label_studio.client()
    timings = {"label_studio_start": ls.startup_time}
    # a project of PNGs in Label Studio's local storage
    r = client.post("/api/projects", json={"title": "chest x-rays", "label_config": CONFIG})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    r = client.post(
        "/api/storages/localfiles",
        json={
            "project": project,
            "path": str(ls.document_root / "images"),
            "use_blob_urls": True,
            "regex_filter": r".*\.png",
            "title": "images",
        },
    )
    assert r.status_code == 201, r.text
    client.post(f"/api/storages/localfiles/{r.json()['id']}/sync").raise_for_status()
    tasks = client.get("/api/tasks", params={"project": project, "page_size": 1000}).json()["tasks"]
    assert len(tasks) == N_TASKS

    # the backend: retrain every 10 annotations, a tiny network
    folder = tmp_path / "backend"
    folder.mkdir()
    settings = {"rounds": FAST_ROUNDS, "image_size": 16, "retrain_every": 10}
    (folder / "backend.json").write_text(json.dumps(settings))
    backend = _Backend(folder, ls.document_root).start()
    r = client.post("/api/ml", json={"project": project, "url": backend.url, "title": "skal_cxr"})
    assert r.status_code == 201, r.text
    assert r.json()["model_version"] == "skal_cxr-cold-start"
    view = client.post(
        "/api/dm/views",
        json={
            "project": project,
            "data": {"title": "next", "ordering": ["tasks:predictions_score"]},
        },
    ).json()["id"]

    # before any annotation: a label-free order, a score for every task
    _retrieve_predictions(client, project)
    cold = _ordered(client, view)
    assert len(cold) == N_TASKS and all(s is not None for _, s in cold)
    assert sorted(s for _, s in cold) == list(range(N_TASKS))  # typicality ranks
    assert [s for _, s in cold] == sorted(s for _, s in cold)  # ascending: label next first

    # 20 annotations, in the order the Data Manager shows: two retrainings
    t0 = time.monotonic()
    by_id = {t["id"]: t for t in tasks}
    for task_id, _ in cold[:20]:
        _annotate(client, project, by_id[task_id])
    health = backend.wait_trained(20)
    timings["annotate_and_retrain"] = time.monotonic() - t0
    # retrained every 10 annotations: at least once, on at least 10 of them
    assert health["model_version"] != "skal_cxr-cold-start"
    state = json.loads((folder / "state.json").read_text())
    assert state["model"]["n_annotations"] == health["n_trained_on"] >= 10
    timings["fit_time"] = state["model"]["fit_time"]

    _retrieve_predictions(client, project)
    trained = _ordered(client, view)
    scores = dict(trained)
    assert len(trained) == N_TASKS and all(s is not None for s in scores.values())
    assert [s for _, s in trained] == sorted(scores.values())
    assert [t for t, _ in trained] != [t for t, _ in cold]  # the order changed
    preds = client.get("/api/predictions", params={"project": project}).json()
    current = [p for p in preds if p["model_version"] == health["model_version"]]
    assert sorted(p["task"] for p in current) == sorted(by_id)
    for p in current:  # the class, its MC Dropout probabilities and the score
        (item,) = p["result"]
        probs = item["meta"]["probabilities"]
        assert set(probs) == {"normal", "pneumonia"}
        assert np.isclose(sum(probs.values()), 1.0, atol=1e-4)
        assert item["value"]["choices"] == [max(probs, key=probs.get)]
        assert p["score"] == pytest.approx(-item["meta"]["acquisition"]["value"])

    # killed after acknowledging an annotation, restarted: nothing lost
    rest = [t for t, _ in cold[20:]]
    _annotate(client, project, by_id[rest[0]])
    backend.kill()
    for task_id in rest[1:3]:  # annotated while the backend is down (webhooks fail)
        _annotate(client, project, by_id[task_id])
    backend.start()
    _retrieve_predictions(client, project)  # Label Studio calls /setup: the backend syncs
    state = json.loads((folder / "state.json").read_text())
    export = client.get(
        f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": True}
    ).json()
    in_label_studio = {
        str(t["id"]): {str(a["id"]) for a in t["annotations"]} for t in export if t["annotations"]
    }
    in_backend = {t: set(a) for t, a in state["annotations"].items()}
    assert len(in_label_studio) == 23
    assert in_backend == in_label_studio
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    stop(backend.proc)

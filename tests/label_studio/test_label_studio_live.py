"""The backend against a real Label Studio (1.23): predictions, retraining, a restart.

Label Studio runs from its own virtualenv (see ``_ls_server``); the test is
skipped, with the reason, where it is not installed (``.ci/install-label-studio``
installs it; ``.ci/run`` calls it).
The test drives it with ``label-studio-sdk``, run by that virtualenv's Python
(``_ls_sdk_driver.py``): the SDK pins packages (numpy, Pillow, ...) that clash
with skal_cxr's environment. httpx only polls the ``/health`` of Label Studio
and of the backend (the SDK's 2.x client has no call for it).
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
            "SKAL_CXR_LABEL_STUDIO_VENV=DIR .ci/install-label-studio installs it)"
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


def _annotate(sdk, project, task):
    result = [
        {
            "from_name": "diagnosis",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [_label(task)]},
        }
    ]
    return sdk.annotate(task=task["id"], project=project, result=result)


def _ordered(sdk, project, view):
    """``[(task id, prediction score)]`` in the Data Manager view's order."""
    return [(t["id"], t["predictions_score"]) for t in sdk.list_tasks(project=project, view=view)]


def test_label_studio_sorts_tasks_by_the_backends_acquisition(label_studio, tmp_path):
    ls = label_studio
    timings = {"label_studio_start": ls.startup_time}
    with ls.sdk() as sdk:
        _drive(sdk, ls, tmp_path, timings)
    print("timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def _drive(sdk, ls, tmp_path, timings):
    # a project of the PNGs in Label Studio's local-files root
    project = sdk.create_project(title="chest x-rays", label_config=CONFIG)
    images = sorted((ls.document_root / "images").glob("*.png"))
    sdk.import_tasks(
        project=project,
        tasks=[{"data": {"image": f"/data/local-files/?d=images/{p.name}"}} for p in images],
    )
    tasks = sdk.list_tasks(project=project)
    assert len(tasks) == N_TASKS

    # the backend: retrain every 10 annotations, a tiny network
    folder = tmp_path / "backend"
    folder.mkdir()
    settings = {"rounds": FAST_ROUNDS, "image_size": 16, "retrain_every": 10}
    (folder / "backend.json").write_text(json.dumps(settings))
    backend = _Backend(folder, ls.document_root).start()
    try:
        ml = sdk.connect_backend(project=project, url=backend.url, title="skal_cxr")
        assert ml["model_version"] == "skal_cxr-cold-start"
        _annotate_retrain_restart(sdk, project, tasks, backend, folder, timings)
    finally:
        stop(backend.proc)


def _annotate_retrain_restart(sdk, project, tasks, backend, folder, timings):
    view = sdk.create_view(project=project, title="next", ordering=["tasks:predictions_score"])

    # before any annotation: a label-free order, a score for every task
    sdk.retrieve_predictions(project=project)
    cold = _ordered(sdk, project, view)
    assert len(cold) == N_TASKS and all(s is not None for _, s in cold)
    assert sorted(s for _, s in cold) == list(range(N_TASKS))  # typicality ranks
    assert [s for _, s in cold] == sorted(s for _, s in cold)  # ascending: label next first

    # 20 annotations, in the order the Data Manager shows: two retrainings
    t0 = time.monotonic()
    by_id = {t["id"]: t for t in tasks}
    for task_id, _ in cold[:20]:
        _annotate(sdk, project, by_id[task_id])
    health = backend.wait_trained(20)
    timings["annotate_and_retrain"] = time.monotonic() - t0
    # retrained every 10 annotations: at least once, on at least 10 of them
    assert health["model_version"] != "skal_cxr-cold-start"
    state = json.loads((folder / "state.json").read_text())
    assert state["model"]["n_annotations"] == health["n_trained_on"] >= 10
    timings["fit_time"] = state["model"]["fit_time"]

    sdk.retrieve_predictions(project=project)
    trained = _ordered(sdk, project, view)
    scores = dict(trained)
    assert len(trained) == N_TASKS and all(s is not None for s in scores.values())
    assert [s for _, s in trained] == sorted(scores.values())
    assert [t for t, _ in trained] != [t for t, _ in cold]  # the order changed
    preds = sdk.predictions(project=project)
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
    _annotate(sdk, project, by_id[rest[0]])
    backend.kill()
    for task_id in rest[1:3]:  # annotated while the backend is down (webhooks fail)
        _annotate(sdk, project, by_id[task_id])
    backend.start()
    sdk.retrieve_predictions(project=project)  # Label Studio calls /setup: the backend syncs
    state = json.loads((folder / "state.json").read_text())
    export = sdk.export(project=project)
    in_label_studio = {
        str(t["id"]): {str(a["id"]) for a in t["annotations"]} for t in export if t["annotations"]
    }
    in_backend = {t: set(a) for t, a in state["annotations"].items()}
    assert len(in_label_studio) == 23
    assert in_backend == in_label_studio

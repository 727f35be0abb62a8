"""Background training of a served project: a worker process below the server (``_scheduler``)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from _labeling_fakes import truth_of  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from skal_cxr.labeling import create_app  # noqa: E402
from skal_cxr.labeling.worker._process import CHILD_NICENESS  # noqa: E402
from skal_cxr.labeling.worker._scheduler import COALESCE_SECONDS, TrainingState  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
#: Training that lasts minutes on any machine (one step per epoch, 20,000 epochs):
#: the tests look at the server while it runs, then end it.
SLOW_TRAINING = {"max_epochs": 1, "min_train_steps": 20_000}


def _stat(pid):
    """``(state, ppid, nice)`` of a process from ``/proc/<pid>/stat``, or None once reaped."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[16])


def _descendants(pid):
    """Every live process below ``pid``, from the ``ppid`` fields of ``/proc``."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                children.setdefault(stat[1], []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _label_batch(client, token, project, truth):
    """Label every image handed out until the server says 'waiting'; return the count."""
    auth = {"Authorization": f"Bearer {token}"}
    n = 0
    for _ in range(50):
        nxt = client.get("/api/next", headers=auth).json()
        if nxt["image_id"] is None or nxt["from_previous_model"]:
            return n, nxt
        r = client.post(
            "/api/labels",
            headers=auth,
            json={"image_id": nxt["image_id"], "label": truth_of(project, truth, nxt["image_id"])},
        )
        assert r.status_code == 201
        n += 1
    raise AssertionError("the batch never ended")


@pytest.mark.slow
@linux_only
def test_a_served_project_trains_in_a_worker_process_at_a_lower_priority(
    make_project, phantom_folder
):
    project = make_project(reserve_size=0)
    token = project.add_rater("alice")
    with TestClient(create_app(project, allowed_hosts=["testserver"])) as client:
        n, _ = _label_batch(client, token, project, phantom_folder[1])
        assert n == 5
        _wait(lambda: len(project.rounds()) == 2, 120, "round 1")
        assert project.training.join(60)
        worker = project.training.trainer.pid
        assert project.training.last_pid == worker != os.getpid()
        state, ppid, nice = _stat(worker)
        assert ppid == os.getpid()
        assert nice == min(19, os.nice(0) + CHILD_NICENESS) > os.nice(0)
        # the round recorded what the worker handed back
        assert len(project.rounds()[1]["queried"]) == 5
    # the app's shutdown ended the worker
    assert _stat(worker) is None or _stat(worker)[0] == "Z"
    assert project.training.trainer is None


@pytest.mark.slow
@linux_only
def test_the_server_answers_while_the_worker_trains(make_project, phantom_folder):
    project = make_project(reserve_size=4, training=SLOW_TRAINING)
    token = project.add_rater("alice")
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(project, allowed_hosts=["testserver"])) as client:
        _, nxt = _label_batch(client, token, project, phantom_folder[1])
        training = project.training
        _wait(
            lambda: training.state == "training" and (training.progress or 0) > 0,
            120,
            "the worker's first epochs",
        )
        status = client.get("/api/status", headers=auth)
        assert nxt["from_previous_model"]  # the reserve, while round 1 trains
        label = client.post(
            "/api/labels",
            headers=auth,
            json={
                "image_id": nxt["image_id"],
                "label": truth_of(project, phantom_folder[1], nxt["image_id"]),
            },
        )
        following = client.get("/api/next", headers=auth)
        assert status.status_code == 200 and status.json()["training"]["state"] == "training"
        assert label.status_code == 201 and following.status_code == 200
        # all of it while the same training still ran: no round was made meanwhile
        assert training.state == "training" and len(project.rounds()) == 1
        worker = training.trainer.pid
    assert _stat(worker) is None or _stat(worker)[0] == "Z"
    assert len(project.rounds()) == 1  # the killed round was not recorded


@pytest.mark.slow
@linux_only
def test_a_round_whose_worker_was_killed_is_trained_again_by_a_new_one(
    make_project, phantom_folder
):
    project = make_project(reserve_size=0, training={"max_epochs": 1, "min_train_steps": 500})
    token = project.add_rater("alice")
    with TestClient(create_app(project, allowed_hosts=["testserver"])) as client:
        _label_batch(client, token, project, phantom_folder[1])
        training = project.training
        _wait(
            lambda: training.state == "training" and (training.progress or 0) > 0,
            120,
            "the worker's first epochs",
        )
        killed = training.trainer.pid
        os.kill(killed, signal.SIGKILL)
        # no further label: the round is made anyway, by a new worker
        _wait(lambda: len(project.rounds()) == 2, 300, "round 1 from a new worker")
        assert training.last_pid == training.trainer.pid != killed
        assert _stat(killed) is None or _stat(killed)[0] == "Z"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@linux_only
def test_a_sigkilled_server_leaves_no_process_behind(make_project, phantom_folder):
    project = make_project(reserve_size=0, training=SLOW_TRAINING)
    token = project.add_rater("alice")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skal_cxr.cli",
            "label",
            "serve",
            str(project.path),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
    )
    below = []
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:

            def up():
                try:
                    return client.get("/api/health").status_code == 200
                except httpx.TransportError:
                    return False

            _wait(up, 120, "the server")
            _label_batch(client, token, project, phantom_folder[1])
            auth = {"Authorization": f"Bearer {token}"}

            def training():
                state = client.get("/api/status", headers=auth).json()["training"]
                return state["state"] == "training" and (state["progress"] or 0) > 0

            _wait(training, 120, "a training in the worker")
        below = _descendants(server.pid)
        assert below, "the server has no worker process"
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        _wait(
            lambda: not any(_stat(p) and _stat(p)[0] != "Z" for p in below),
            20,
            f"the server's processes {below} to end",
        )
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        for pid in below:  # the test failed: leave nothing running
            stat = _stat(pid)
            if stat is not None and stat[0] != "Z":
                os.kill(pid, signal.SIGKILL)
    assert len(project.rounds()) == 1  # the round in training was not recorded


class _NoWorker:
    """A TrainerProcess stand-in: the thread's jobs never reach a process."""

    def start(self):
        return self

    def close(self):
        pass


def test_a_burst_of_labels_wakes_the_thread_for_a_few_looks_not_one_each():
    calls = []

    def train(project, run):
        calls.append(project)
        return None  # no batch complete

    state = TrainingState(train)
    state.background, state.trainer = True, _NoWorker()
    try:
        started = time.monotonic()
        for _ in range(20):  # a label every 10 ms
            state.notify("project")
            time.sleep(0.01)
        burst = time.monotonic() - started
        assert state.join(30)
        # at most one look per COALESCE_SECONDS of the burst (and one after it),
        # not one per label
        assert 1 <= len(calls) <= burst / COALESCE_SECONDS + 2 < 20
        before = len(calls)
        state.notify("project")  # a later label is looked at too
        assert state.join(30) and len(calls) == before + 1
    finally:
        state.close()
    assert state.trainer is None and not state.background


def test_the_projects_training_thread_calls_its_round_with_the_run(make_project):
    # the thread calls train(project, run); before a batch is complete no round runs
    project = make_project(reserve_size=0)
    assert project.training._train(project, None) is None


@pytest.mark.parametrize("warm_fails", [False, True])
def test_the_thread_warms_up_once_before_its_first_round(warm_fails):
    """``warm(project, run)`` runs once, after the worker started and before any round."""
    calls = []

    def warm(project, run):
        calls.append(("warm", project, callable(run)))
        if warm_fails:
            raise OSError("the image cache is gone")  # left to the round to report

    def train(project, run):
        calls.append(("train", project))
        return None

    state = TrainingState(train, warm)
    state.background, state.trainer = True, _NoWorker()
    try:
        state.notify("project")
        assert state.join(30)
        state.notify("project")
        assert state.join(30)
    finally:
        state.close()
    assert calls == [("warm", "project", True), ("train", "project"), ("train", "project")]
    assert state.error is None

"""SIGKILL the server at random moments while scripted raters label: nothing is lost."""

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from _labeling_fakes import truth_of  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``skal-cxr label serve`` in a subprocess that the test kills and restarts."""

    def __init__(self, project_dir, port, log):
        self.log = Path(log)  # every start's output, appended: what a failure shows
        self.args = [
            sys.executable,
            "-m",
            "skal_cxr.cli",
            "label",
            "serve",
            str(project_dir),
            "--port",
            str(port),
        ]
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = None

    def start(self, timeout=60):
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_label_and_the_round_resumes(
    make_project, phantom_folder, tmp_path
):
    project = make_project(labels_per_image=2, query_size=6, budget=30, reserve_size=4)
    tokens = {name: project.add_rater(name) for name in ("alice", "bob", "carol")}
    server = Server(project.path, _free_port(), tmp_path / "server.log")
    acknowledged = []  # (label_id, rater, image_id, label)
    # (rater, request, status, body) of each error answer: busy storage (503) and any other
    refused, busy = [], []
    rng = random.Random(0)
    stop = threading.Event()
    n_kills = 0

    # kills follow the raters' progress, not the clock, so that a fast machine
    # cannot finish the budget (30 images x 2 labels) before the kills happen
    kill_points = sorted(rng.sample(range(4, 45), 3))

    def killer():
        nonlocal n_kills
        for point in kill_points:
            while len(acknowledged) < point:
                if stop.wait(0.01):
                    return
            time.sleep(rng.uniform(0.0, 0.2))  # somewhere inside the next requests
            server.kill()
            n_kills += 1
            server.start()

    def record(name, request, answer):
        (busy if answer.status_code == 503 else refused).append(
            (name, request, answer.status_code, answer.text)
        )

    def rater(name):
        client = httpx.Client(
            base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {tokens[name]}"}
        )
        deadline = time.monotonic() + 240
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                answer = client.get("/api/next")
                if answer.status_code != 200:  # 503 + Retry-After: busy storage, try again
                    record(name, "GET /api/next", answer)
                    time.sleep(0.1)
                    continue
                nxt = answer.json()
                if nxt["reason"] == "done":
                    return
                if nxt["image_id"] is None:
                    time.sleep(0.1)
                    continue
                label = truth_of(project, phantom_folder[1], nxt["image_id"])
                r = client.post(
                    "/api/labels",
                    json={"image_id": nxt["image_id"], "label": label, "seconds": 0.1},
                )
                if r.status_code == 201:
                    body = r.json()
                    acknowledged.append((body["label_id"], name, body["image_id"], label))
                elif r.status_code >= 500:  # a 4xx: the image went to others after a restart
                    record(name, "POST /api/labels", r)
            except (httpx.TransportError, ValueError):
                time.sleep(0.1)  # the server is down: try again

    server.start()
    try:
        threads = [threading.Thread(target=rater, args=(n,)) for n in tokens]
        kill_thread = threading.Thread(target=killer)
        for t in threads + [kill_thread]:
            t.start()
        for t in threads:
            t.join(300)
        stop.set()
        kill_thread.join(60)
        # every rater finished: the loop reached its budget across the restarts
        status = httpx.get(
            server.url + "/api/status",
            timeout=10,
            headers={"Authorization": f"Bearer {tokens['alice']}"},
        ).json()
    finally:
        stop.set()
        server.stop()

    # what the raters and the server saw, shown by any failure below
    why = (refused[:5], busy[:5], len(busy), server.log.read_text()[-4000:])
    assert not refused and n_kills == 3 and acknowledged, why
    assert "rounds" in status, (status, why)
    db = sqlite3.connect(project.path / "project.sqlite")
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT l.id, r.name, l.image_id, l.label FROM labels l JOIN raters r "
            "ON r.id = l.rater_id"
        )
    }
    for label_id, name, image_id, label in acknowledged:
        assert rows[label_id] == (name, int(image_id), label)
    assert len({a[0] for a in acknowledged}) == len(acknowledged)
    pairs = [(name, image) for name, image, _ in rows.values()]
    assert len(pairs) == len(set(pairs)), "an image was labeled twice by one rater"
    per_image = {}
    for _, image in pairs:
        per_image[image] = per_image.get(image, 0) + 1
    assert max(per_image.values()) <= 2
    rounds = [r["round"] for r in status["rounds"]]
    assert rounds == list(range(len(rounds))) and len(rounds) >= 3
    assert status["rounds"][-1]["n_queried"] == 0 and status["stopping"]["budget_left"] == 0
    assert sum(n == 2 for n in per_image.values()) >= 28

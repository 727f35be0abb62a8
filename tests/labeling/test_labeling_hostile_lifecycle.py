"""A project's files removed, replaced or half-written under it, and the CLI's errors.

Each test uses real processes where the fault needs one (a server, a killed
``init``, two commands on one project); servers listen on loopback only and
every wait is bounded.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _labeling_fakes import CLASSES, truth_of

from skal_cxr.cli import main

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and signals")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args, timeout=120):
    """``skal-cxr ARGS`` in a subprocess: ``(returncode, stdout, stderr)``."""
    proc = subprocess.run(
        [sys.executable, "-m", "skal_cxr.cli", *map(str, args)],
        env=ENV,
        capture_output=True,
        timeout=timeout,
    )
    out, err = (b.decode(errors="replace") for b in (proc.stdout, proc.stderr))
    return proc.returncode, out, err


class Server:
    """``skal-cxr label serve`` in a subprocess, stopped by its PID."""

    def __init__(self, project_dir):
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.args = [
            sys.executable,
            "-m",
            "skal_cxr.cli",
            "label",
            "serve",
            str(project_dir),
            "--port",
            self.url.rsplit(":", 1)[1],
        ]
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            self.args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server ended: {self.proc.stderr.read().decode()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("the server did not start")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __exit__(self, *exc):
        self.kill()
        self.proc.stderr.close()


def _label_one(client, project, truth):
    """Ask for the next image and label it; the response of the POST."""
    nxt = client.get("/api/next").json()
    assert nxt["image_id"] is not None, nxt
    label = truth_of(project, truth, nxt["image_id"])
    return client.post("/api/labels", json={"image_id": nxt["image_id"], "label": label})


def _client(server, token):
    return httpx.Client(
        base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    )


def _stored_labels(project_dir):
    db = sqlite3.connect(Path(project_dir) / "project.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT id FROM labels")}
    finally:
        db.close()


# -- WAL and database lost under a running server ---------------------------------------------


def test_a_lost_wal_is_never_acknowledged_and_its_labels_are_kept(make_project, phantom_folder):
    project = make_project(query_size=6)
    token = project.add_rater("alice")
    wal = project.path / "project.sqlite-wal"
    acknowledged, answers = [], []
    with Server(project.path) as server, _client(server, token) as client:
        for _ in range(2):
            r = _label_one(client, project, phantom_folder[1])
            assert r.status_code == 201
            acknowledged.append(r.json()["label_id"])
        assert wal.exists()
        wal.unlink()
        for _ in range(2):  # what a rater's page does next
            r = client.get("/api/next")
            answers.append(r)
            if r.status_code == 200 and r.json()["image_id"] is not None:
                label = truth_of(project, phantom_folder[1], r.json()["image_id"])
                r = client.post(
                    "/api/labels", json={"image_id": r.json()["image_id"], "label": label}
                )
                answers.append(r)
                if r.status_code == 201:
                    acknowledged.append(r.json()["label_id"])
    # SIGKILLed: every label acknowledged survives, those before the loss included
    assert set(acknowledged) <= _stored_labels(project.path), (acknowledged, answers)
    # never acknowledged after the loss: a one-line 503 to retry later
    assert [r.status_code for r in answers] == [503, 503], [r.text for r in answers]
    assert all(r.headers.get("Retry-After") for r in answers)
    assert "project.sqlite-wal" in answers[0].json()["detail"]
    assert "\n" not in answers[0].json()["detail"]
    # and the project serves again once restarted
    with Server(project.path) as server, _client(server, token) as client:
        assert _label_one(client, project, phantom_folder[1]).status_code == 201


def test_status_warns_in_one_line_of_a_wal_that_vanished(make_project, phantom_folder):
    project = make_project(query_size=6)
    token = project.add_rater("alice")
    with Server(project.path) as server, _client(server, token) as client:
        for _ in range(2):
            assert _label_one(client, project, phantom_folder[1]).status_code == 201
        (project.path / "project.sqlite-wal").unlink()
        server.kill()  # no write after the loss: the labels in the WAL are gone
    rc, _, err = _cli("label", "status", project.path)
    assert rc == 0, err
    warnings = [line for line in err.splitlines() if line]
    assert len(warnings) == 1 and "warning" in warnings[0], err
    assert "project.sqlite-wal" in warnings[0]


def test_a_database_deleted_while_serving_is_503_and_never_recreated(make_project, phantom_folder):
    project = make_project(query_size=6)
    token = project.add_rater("alice")
    db = project.path / "project.sqlite"
    with Server(project.path) as server, _client(server, token) as client:
        assert _label_one(client, project, phantom_folder[1]).status_code == 201
        db.unlink()
        answers = [
            client.get("/api/next"),
            client.post("/api/labels", json={"image_id": "2", "label": CLASSES[0]}),
            client.get("/api/status"),
        ]
        assert not db.exists(), "the server recreated the database"
    assert [r.status_code for r in answers] == [503, 503, 503], [r.text for r in answers]
    for r in answers:
        assert r.headers.get("Retry-After") and "\n" not in r.json()["detail"]
        assert "project.sqlite" in r.json()["detail"]


def test_every_connection_commits_with_synchronous_full(make_project):
    project = make_project()
    with project.db.connect() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- init killed at any moment ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("cold_start", ["typicality"])
def test_init_killed_at_any_moment_is_finished_by_rerunning_it(
    tmp_path, phantom_folder, cold_start
):
    args = [
        sys.executable,
        "-m",
        "skal_cxr.cli",
        "label",
        "init",
        None,
        "--image-dir",
        str(phantom_folder[0]),
        "--classes",
        ",".join(CLASSES),
        "--query-size",
        "5",
        "--image-size",
        "16",
        "--cold-start",
        cold_start,
    ]
    # moments after the project folder appears, and after the database file appears
    moments = [("folder", d) for d in (0.0, 0.05, 0.15, 0.4)] + [
        ("db", d) for d in (0.0, 0.02, 0.05, 0.08, 0.1, 0.2)
    ]
    for i, (after, delay) in enumerate(moments):
        folder = tmp_path / f"p{i}"
        args[5] = str(folder)
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                seen = folder.exists() and (
                    after == "folder"
                    or any(p.name.startswith("project.sqlite") for p in folder.iterdir())
                )
                if seen:
                    break
                time.sleep(0.005)
            time.sleep(delay)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        rc, out, err = _cli(*args[3:])
        if rc != 0:  # only when the killed init had finished: the project is whole
            assert "exists and is not empty" in err, f"kill {delay} s after the {after}: {err}"
        rc, out, err = _cli("label", "add-rater", folder, "alice")
        assert rc == 0, err
        token = out.split("#token=")[1].strip()
        from skal_cxr.labeling import open_project

        project = open_project(folder)
        assert project.rater_for_token(token) == "alice"
        assert project.next_image("alice")["image_id"] is not None


def test_a_project_left_without_its_first_batch_is_refused_and_init_redoes_it(
    make_project, phantom_folder, capsys
):
    project = make_project()
    db = sqlite3.connect(project.path / "project.sqlite")
    with db:
        db.execute("DELETE FROM queue")
        db.execute("DELETE FROM rounds")  # an init of an earlier version killed before round 0
    db.close()
    assert main(["label", "status", str(project.path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "init" in err
    args = ["label", "init", str(project.path), "--image-dir", str(phantom_folder[0])]
    args += ["--classes", ",".join(CLASSES), "--image-size", "16", "--query-size", "5"]
    assert main(args) == 0, capsys.readouterr().err
    assert main(["label", "status", str(project.path)]) == 0


# -- one line, exit code 2, for every CLI error -----------------------------------------------


def _drop(table):
    return lambda db: db.execute(f"DROP TABLE {table}")


_DAMAGE = {
    "config row missing": lambda db: db.execute("DELETE FROM meta WHERE key = 'config'"),
    "config garbage": lambda db: db.execute("UPDATE meta SET value = '{{x' WHERE key = 'config'"),
    "config not a dict": lambda db: db.execute("UPDATE meta SET value = '[]' WHERE key = 'config'"),
    "stop_set garbage": lambda db: db.execute(
        "UPDATE meta SET value = 'nope' WHERE key = 'stop_set'"
    ),
    "rounds dropped": _drop("rounds"),
    "raters dropped": _drop("raters"),
}


def _one_error_line(err):
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("skal-cxr: error: "), err


@pytest.mark.parametrize("damage", list(_DAMAGE))
@pytest.mark.parametrize("command", ["status", "serve", "add-rater"])
def test_a_database_with_broken_settings_is_refused_in_one_line(
    make_project, capsys, damage, command
):
    project = make_project()
    db = sqlite3.connect(project.path / "project.sqlite")
    with db:
        db.execute("PRAGMA foreign_keys = OFF")
        _DAMAGE[damage](db)
    db.close()
    extra = {"status": [], "serve": ["--port", str(_free_port())], "add-rater": ["bob"]}
    rc = main(["label", command, str(project.path), *extra[command]])
    assert rc == 2
    _one_error_line(capsys.readouterr().err)


def test_a_file_name_that_is_not_utf8_is_refused_in_one_line(tmp_path, phantom_folder, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted(phantom_folder[0].iterdir())[:12]:
        (images / p.name).write_bytes(p.read_bytes())
    os.rename(images / "im000.png", os.fsencode(images) + b"/im\xff.png")
    project = tmp_path / "project"
    args = ["label", "init", str(project), "--image-dir", str(images)]
    args += ["--classes", ",".join(CLASSES), "--image-size", "16", "--query-size", "2"]
    assert main(args) == 2
    _one_error_line(capsys.readouterr().err)
    assert not (project / "project.sqlite").exists()


def test_a_rater_name_that_is_not_utf8_is_refused_in_one_line(make_project, capsys):
    project = make_project()
    name = os.fsdecode(b"bob\xff")  # as Python passes such an argument
    assert main(["label", "add-rater", str(project.path), name]) == 2
    _one_error_line(capsys.readouterr().err)
    assert project.raters() == []


def test_a_missing_csv_is_one_line_with_exit_code_2(tmp_path, phantom_folder, capsys):
    args = ["label", "init", str(tmp_path / "p"), "--image-dir", str(phantom_folder[0])]
    args += ["--classes", ",".join(CLASSES), "--csv", str(tmp_path / "missing.csv")]
    assert main(args) == 2
    _one_error_line(capsys.readouterr().err)


# -- one project, one writer process ----------------------------------------------------------


def test_a_second_server_and_a_pull_are_refused_while_one_serves(make_project):
    project = make_project()
    with Server(project.path) as server:
        pid = server.proc.pid
        for command in (["serve", "--port", str(_free_port())], ["pull"]):
            rc, _, err = _cli("label", command[0], project.path, *command[1:])
            assert rc == 2, err
            _one_error_line(err)
            assert f"PID {pid}" in err
        rc, _, err = _cli("label", "status", project.path)  # readers take no lock
        assert rc == 0, err
        server.kill()
    # the lock went with the killed server
    with Server(project.path) as server:
        assert server.proc.poll() is None

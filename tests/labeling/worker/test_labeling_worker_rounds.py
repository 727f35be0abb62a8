"""A labeling project's rounds through the engine's loop: the rounds it made before.

``tests/data/labeling_rounds.json`` holds the rounds table and queue of two
projects (random and typicality cold starts) labeled by an oracle to their
budget, recorded with the round written in the labeling worker itself.
"""

import copy
import json
import sqlite3
from pathlib import Path

import pytest
from _labeling_fakes import truth_of

from skal_cxr.labeling import open_project

EXPECTED = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "labeling_rounds.json").read_text()
)
COLUMNS = "round, strategy, queried, scores, reserve, n_labeled, class_counts, stop_predictions"


def _as_stored_before_the_view(project):
    """The project reopened with its settings as stored before the view: no model key."""
    conn = sqlite3.connect(project.path / "project.sqlite")
    try:
        (text,) = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        config = json.loads(text)
        for key in ("model", "view", "head"):
            del config["engine"][key]
        with conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    finally:
        conn.close()
    return open_project(project.path)


@pytest.mark.parametrize("stored_before_the_view", [False, True])
@pytest.mark.parametrize("cold_start", sorted(EXPECTED))
def test_an_oracle_labeled_project_makes_the_rounds_it_made_before(
    cold_start, stored_before_the_view, make_project, phantom_folder
):
    project = make_project(budget=26, reserve_size=3, cold_start=cold_start)
    if stored_before_the_view:  # the CNN, as every project made before the view
        project = _as_stored_before_the_view(project)
        assert project.round_config.model == "cnn"
    project.add_rater("a")
    while True:
        while (nxt := project.next_image("a"))["image_id"] is not None:
            label = truth_of(project, phantom_folder[1], nxt["image_id"])
            project.submit_label("a", nxt["image_id"], label)
        if project.train_round() is None:
            break
    conn = sqlite3.connect(project.path / "project.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute(f"SELECT {COLUMNS} FROM rounds ORDER BY round")]
        queue = [list(r) for r in conn.execute("SELECT image_id, round, kind, seq FROM queue")]
    finally:
        conn.close()
    expected = copy.deepcopy(EXPECTED[cold_start])
    assert len(rows) == len(expected["rounds"]) == 5
    for row, old in zip(rows, expected["rounds"]):
        scores, old_scores = row.pop("scores"), old.pop("scores")
        assert row == old
        if old_scores is None:
            assert scores is None
        else:
            assert json.loads(scores) == pytest.approx(json.loads(old_scores), rel=1e-6)
    assert sorted(queue, key=lambda q: q[3]) == expected["queue"]


#: What a served project's training thread does, in a fresh interpreter: the round's
#: job, the worker's answers (given here: computed by the test), the round recorded.
_TRAINING_THREAD = """
import json, pickle, sys
from types import SimpleNamespace

from skal_cxr.labeling import open_project
from skal_cxr.labeling.worker import _jobs, _rounds, _scheduler  # noqa: F401 (the thread's)

project = open_project(sys.argv[1])
with open(sys.argv[2], "rb") as fh:
    trained = pickle.load(fh)  # as the worker's pipe delivers it

def run(job):
    return trained if isinstance(job, _jobs.TrainJob) else SimpleNamespace(reserve=[])

made = _rounds.train_next_round(project, run)
heavy = ("sklearn", "scipy", "torch", "torchvision", "skorch", "pandas", "matplotlib")
print(json.dumps({"round": made, "heavy": sorted(m for m in heavy if m in sys.modules)}))
"""


def test_the_servers_training_thread_imports_no_heavy_library(
    make_project, phantom_folder, tmp_path
):
    """The thread that makes a served project's rounds runs in the server: importing
    torch or scikit-learn there holds the interpreter for seconds while raters label
    (the first round's next batch came 2.8 s after the last label, p99 of a label 363 ms)."""
    import pickle
    import subprocess
    import sys

    from _labeling_fakes import TINY_VIEW

    from skal_cxr.labeling.worker._process import run_job
    from skal_cxr.labeling.worker._rounds import round_job

    project = make_project(**TINY_VIEW)
    project.add_rater("a")
    while (nxt := project.next_image("a"))["image_id"] is not None:
        project.submit_label(
            "a", nxt["image_id"], truth_of(project, phantom_folder[1], nxt["image_id"])
        )
    answer = tmp_path / "trained.pkl"
    answer.write_bytes(pickle.dumps(run_job(round_job(project))))
    done = subprocess.run(
        [sys.executable, "-c", _TRAINING_THREAD, str(project.path), str(answer)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"round": 1, "heavy": []}

"""A labeling project's rounds through the engine's loop: the rounds it made before.

``tests/data/labeling_rounds.json`` holds the rounds table and queue of two
projects (random and typicality cold starts) labeled by an oracle to their
budget, recorded with the round written in the labeling worker itself.
"""

import json
import sqlite3
from pathlib import Path

import pytest
from _labeling_fakes import truth_of

EXPECTED = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "labeling_rounds.json").read_text()
)
COLUMNS = "round, strategy, queried, scores, reserve, n_labeled, class_counts, stop_predictions"


@pytest.mark.parametrize("cold_start", sorted(EXPECTED))
def test_an_oracle_labeled_project_makes_the_rounds_it_made_before(
    cold_start, make_project, phantom_folder
):
    project = make_project(budget=26, reserve_size=3, cold_start=cold_start)
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
    expected = EXPECTED[cold_start]
    assert len(rows) == len(expected["rounds"]) == 5
    for row, old in zip(rows, expected["rounds"]):
        scores, old_scores = row.pop("scores"), old.pop("scores")
        assert row == old
        if old_scores is None:
            assert scores is None
        else:
            assert json.loads(scores) == pytest.approx(json.loads(old_scores), rel=1e-6)
    assert sorted(queue, key=lambda q: q[3]) == expected["queue"]

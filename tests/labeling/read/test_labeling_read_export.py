"""Exports that lose nothing: the CSV round-trips through load_image_folder; the audit trail."""

import csv
import json

import numpy as np

from skal_cxr.datasets import load_image_folder


def test_csv_has_every_rater_and_round_trips(make_project, phantom_folder, tmp_path):
    project = make_project(labels_per_image=2)
    for name in ("alice", "bob"):
        project.add_rater(name)
    done = []
    for i, (a, b) in enumerate(
        [("normal", "normal"), ("moderate", "severe"), ("severe", "severe")]
    ):
        image_id = project.next_image("alice")["image_id"]
        project.submit_label("alice", image_id, a, seconds=3.5 + i, note=f"note {i}")
        assert project.next_image("bob")["image_id"] == image_id
        project.submit_label("bob", image_id, b, seconds=1.25)
        done.append(image_id)
    skipped = project.next_image("alice")["image_id"]
    project.skip("alice", skipped)
    out = tmp_path / "labels.csv"
    assert project.export(out) == 3
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    table = {i: rel for i, rel, _, _ in project.image_table()}
    assert [r["filename"] for r in rows] == [table[i] for i in done]
    assert [r["label"] for r in rows] == ["normal", "severe", "severe"]  # tie: more severe
    assert [r["consensus"] for r in rows] == ["unanimous", "majority", "unanimous"]
    assert [r["note_alice"] for r in rows] == ["note 0", "note 1", "note 2"]
    assert [float(r["seconds_alice"]) for r in rows] == [3.5, 4.5, 5.5]
    assert [r["rater_bob"] for r in rows] == ["normal", "severe", "severe"]
    assert {r["round"] for r in rows} == {"0"} and {r["queue"] for r in rows} == {"batch"}
    assert {r["model_version"] for r in rows} == {"cold start"}
    assert [int(r["query_rank"]) for r in rows] == [1, 2, 3]
    # read back: the same files and consensus labels
    data = load_image_folder(out, phantom_folder[0], image_size=16, classes=project.classes)
    assert data.filenames.tolist() == [table[i] for i in done]
    assert np.asarray(data.target).tolist() == ["normal", "severe", "severe"]


def test_jsonl_is_the_full_audit_trail(make_project, tmp_path):
    project = make_project()
    project.add_rater("alice")
    first = project.next_image("alice")["image_id"]
    saved = project.submit_label("alice", first, "moderate", note="rotated")
    project.undo("alice", saved["label_id"])
    project.submit_label("alice", first, "normal")
    second = project.next_image("alice")["image_id"]
    project.skip("alice", second)
    out = tmp_path / "audit.jsonl"
    n = project.export(out, format="jsonl")
    events = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert len(events) == n
    kinds = [e["event"] for e in events]
    assert kinds[0] == "round" and kinds.count("round") == 1
    labels = [e for e in events if e["event"] in ("label", "undo")]
    assert [(e["event"], e["label"], e["note"]) for e in labels] == [
        ("label", "moderate", "rotated"),
        ("undo", None, None),
        ("label", "normal", None),
    ]
    assert labels[1]["supersedes"] == saved["label_id"]
    assignments = {e["image_id"]: e["state"] for e in events if e["event"] == "assignment"}
    assert assignments == {first: "labeled", second: "skipped"}
    assert all(e["rater"] == "alice" for e in events if "rater" in e)
    times = [e["created_at"] for e in events]
    assert times == sorted(times)


def test_exports_and_backups_are_readable_by_their_owner_only(make_project, tmp_path):
    import os

    from skal_cxr.cli import main

    project = make_project()
    project.add_rater("alice")
    project.submit_label("alice", project.next_image("alice")["image_id"], "normal")
    old = os.umask(0o022)  # the usual umask: files readable by everyone
    try:
        project.export(tmp_path / "labels.csv")
        project.export(tmp_path / "audit.jsonl", format="jsonl")
        assert main(["label", "backup", str(project.path), str(tmp_path / "b.sqlite")]) == 0
    finally:
        os.umask(old)
    for name in ("labels.csv", "audit.jsonl", "b.sqlite"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o600), name


def test_a_skip_is_an_event_of_its_own_with_the_seconds_before_it(make_project, tmp_path):
    import sqlite3

    from skal_cxr.labeling.store import _labels

    project = make_project()
    project.add_rater("alice")
    image_id = project.next_image("alice")["image_id"]
    with sqlite3.connect(project.path / "project.sqlite") as conn:  # handed out at a known time
        conn.execute(
            "UPDATE assignments SET opened_at = '2026-01-02T03:04:00.000000+00:00' "
            "WHERE image_id = ?",
            (int(image_id),),
        )
    skipped_at = "2026-01-02T03:04:12.500000+00:00"
    original = _labels.utcnow
    _labels.utcnow = lambda: skipped_at
    try:
        assert project.skip("alice", image_id) == {"image_id": image_id, "skipped": True}
    finally:
        _labels.utcnow = original
    out = tmp_path / "audit.jsonl"
    project.export(out, format="jsonl")
    events = [json.loads(line) for line in open(out, encoding="utf-8")]
    skips = [e for e in events if e["event"] == "skip"]
    assert skips == [
        {
            "event": "skip",
            "skip_id": 1,
            "image_id": image_id,
            "rater": "alice",
            "seconds": 12.5,
            "created_at": skipped_at,
            "filename": dict((i, rel) for i, rel, _, _ in project.image_table())[image_id],
        }
    ]
    # the assignment's own event stays as it was
    assert [e["state"] for e in events if e["event"] == "assignment"] == ["skipped"]


def _disputed(make_project):
    """A project whose first image alice and bob disagree on; carol adjudicates."""
    project = make_project(labels_per_image=2, consensus="adjudicate")
    for name in ("alice", "bob"):
        project.add_rater(name)
    project.add_rater("carol", role="adjudicator")
    image_id = project.next_image("alice")["image_id"]
    project.submit_label("alice", image_id, "normal", seconds=2.0)
    assert project.next_image("bob")["image_id"] == image_id
    project.submit_label("bob", image_id, "severe", seconds=3.0)
    return project, image_id


#: The CSV's columns before the adjudication's seconds, for raters alice, bob and carol.
OLD_HEADER = [
    "filename",
    "label",
    "consensus",
    "adjudicator",
    "adjudication_note",
    "patient",
    "study_date",
    "round",
    "queue",
    "model_version",
    "query_rank",
    "acquisition_score",
    "n_labels",
    "n_skips",
    "skipped_by",
    "first_labeled_at",
    "last_labeled_at",
] + [f"{what}_{n}" for n in ("alice", "bob", "carol") for what in ("rater", "note", "seconds")]


def test_adjudications_record_their_seconds_in_both_exports(make_project, tmp_path):
    project, image_id = _disputed(make_project)
    first = project.review.decide("carol", image_id, "moderate", note="subtle", seconds=7.25)
    project.add_rater("dave", role="adjudicator")
    project.review.revise("dave", image_id, "severe", seconds=4)
    out = tmp_path / "labels.csv"
    assert project.export(out) == 1
    with open(out, encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == OLD_HEADER + ["rater_dave", "note_dave", "seconds_dave"] + [
        "adjudication_seconds"
    ]
    (row,) = csv.DictReader(open(out, encoding="utf-8"))
    assert (row["label"], row["adjudicator"], row["adjudication_seconds"]) == (
        "severe",
        "dave",
        "4.0",
    )
    project.export(tmp_path / "audit.jsonl", format="jsonl")
    events = [json.loads(line) for line in open(tmp_path / "audit.jsonl", encoding="utf-8")]
    decisions = [
        (e["event"], e["rater"], e["label"], e["seconds"])
        for e in events
        if e["event"].startswith("adjudication")
    ]
    assert decisions == [
        ("adjudication", "carol", "moderate", 7.25),
        ("adjudication_revision", "dave", "severe", 4.0),
    ]
    assert first["adjudication_id"] == 1


def test_a_decision_without_seconds_exports_an_empty_cell(make_project, tmp_path):
    project, image_id = _disputed(make_project)
    project.review.decide("carol", image_id, "moderate")
    out = tmp_path / "labels.csv"
    project.export(out)
    (row,) = csv.DictReader(open(out, encoding="utf-8"))
    assert row["adjudication_seconds"] == "" and row["adjudicator"] == "carol"


def test_a_correction_or_revision_without_seconds_keeps_the_readings_time(make_project, tmp_path):
    """The corrections panel sends no seconds (no film is read there): the CSV keeps
    the time of the readings before, for the label and for the decision alike."""
    project, image_id = _disputed(make_project)
    label_id = project.rater_labels("alice")[0]["label_id"]
    project.correct_label("alice", label_id, "moderate")  # no seconds
    project.review.decide("carol", image_id, "moderate", seconds=7.25)
    project.review.revise("carol", image_id, "severe")  # no seconds
    out = tmp_path / "labels.csv"
    project.export(out)
    (row,) = csv.DictReader(open(out, encoding="utf-8"))
    assert (row["rater_alice"], row["seconds_alice"]) == ("moderate", "2.0")
    assert (row["label"], row["adjudicator"], row["adjudication_seconds"]) == (
        "severe",
        "carol",
        "7.25",
    )
    project.review.revise("carol", image_id, "moderate", seconds=1.5)  # a second reading
    project.export(out)
    (row,) = csv.DictReader(open(out, encoding="utf-8"))
    assert row["adjudication_seconds"] == "8.75"

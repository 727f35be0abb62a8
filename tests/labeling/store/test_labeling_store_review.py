"""Adjudication: disagreements wait for an adjudicator; agreement on the status page."""

import pytest

from skal_cxr.exceptions import Conflict, Forbidden, InvalidLabel


def _label(project, rater, label):
    image_id = project.next_image(rater)["image_id"]
    project.submit_label(rater, image_id, label)
    return image_id


@pytest.fixture
def project(make_project):
    project = make_project(labels_per_image=2, consensus="adjudicate", adjudicate_spread=2)
    for name in ("alice", "bob"):
        project.add_rater(name)
    project.add_rater("carol", role="adjudicator")
    return project


def test_disagreements_wait_for_the_adjudicator_and_do_not_train(project):
    near = _label(project, "alice", "normal")  # one step apart: majority decides
    assert _label(project, "bob", "moderate") == near
    far = _label(project, "alice", "normal")  # two steps apart: adjudicate
    assert _label(project, "bob", "severe") == far
    same = _label(project, "alice", "severe")
    assert _label(project, "bob", "severe") == same
    ids, codes = project.labeled_set()
    labeled = dict(zip(ids.tolist(), codes.tolist()))
    assert int(far) not in labeled  # not in the training set yet
    assert labeled[int(near)] == 1 and labeled[int(same)] == 2  # majority: the more severe
    with pytest.raises(Forbidden):
        project.next_adjudication("alice")
    nxt = project.next_adjudication("carol")
    assert nxt["image_id"] == far and nxt["pending"] == 1
    assert [(r["rater"], r["label"]) for r in nxt["labels"]] == [
        ("alice", "normal"),
        ("bob", "severe"),
    ]
    with pytest.raises(InvalidLabel):
        project.adjudicate("carol", far, "huge")
    with pytest.raises(Conflict):
        project.adjudicate("carol", near, "normal")  # not disputed
    project.adjudicate("carol", far, "moderate", note="effusion, no consolidation")
    ids, codes = project.labeled_set()
    assert dict(zip(ids.tolist(), codes.tolist()))[int(far)] == 1
    assert project.next_adjudication("carol")["image_id"] is None
    with pytest.raises(Conflict):
        project.adjudicate("carol", far, "severe")  # already decided


def test_an_adjudicator_never_decides_their_own_disagreement(make_project):
    project = make_project(labels_per_image=2, consensus="adjudicate")
    project.add_rater("alice")
    project.add_rater("carol", role="adjudicator")
    image_id = _label(project, "alice", "normal")
    assert _label(project, "carol", "severe") == image_id
    assert project.next_adjudication("carol")["image_id"] is None
    assert project.status()["agreement"]["pending"] == 1


def test_status_has_pairwise_and_per_class_agreement(project):
    for a, b in [("normal", "normal"), ("normal", "moderate"), ("severe", "severe")]:
        _label(project, "alice", a)
        _label(project, "bob", b)
    agreement = project.status()["agreement"]
    pair = agreement["pairs"][0]
    assert pair["raters"] == ["alice", "bob"] and pair["n_items"] == 3
    assert pair["agreement"] == pytest.approx(2 / 3)
    assert pair["confusion"] == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    # po = 2/3; pe = 2/3 * 1/3 + 0 + 1/3 * 1/3 = 1/3 -> kappa = (2/3 - 1/3) / (2/3) = 1/2
    assert pair["kappa"] == pytest.approx(0.5)
    assert agreement["per_class"] == {
        "normal": pytest.approx(2 / 3),
        "moderate": 0.0,
        "severe": 1.0,
    }
    assert agreement["pending"] == 0 and agreement["adjudicated"] == 0


def test_an_old_project_is_migrated(make_project):
    import sqlite3

    from skal_cxr.labeling import open_project

    project = make_project()
    db = project.path / "project.sqlite"
    with sqlite3.connect(db) as conn:  # as written by schema version 1
        conn.executescript(
            "DROP TABLE adjudications; ALTER TABLE raters DROP COLUMN role; "
            "ALTER TABLE images DROP COLUMN study_date; DROP TABLE deferrals; "
            "ALTER TABLE labels DROP COLUMN scores; DROP TABLE skips; "
            "UPDATE meta SET value = '1' WHERE key = 'schema_version';"
        )
    reopened = open_project(project.path)
    reopened.add_rater("carol", role="adjudicator")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "4",
        )
        assert conn.execute("SELECT role FROM raters").fetchall() == [("adjudicator",)]
        assert conn.execute("SELECT COUNT(study_date) FROM images").fetchone() == (0,)
    assert reopened.related_images("1")[0]["current"]


def test_a_version_2_project_opens_unchanged_and_takes_corrections(make_project):
    import sqlite3

    from skal_cxr.labeling import open_project

    project = make_project(labels_per_image=2, consensus="adjudicate")
    project.add_rater("alice")
    project.add_rater("bob")
    project.add_rater("carol", role="adjudicator")
    image_id = _label(project, "alice", "normal")
    _label(project, "bob", "severe")
    project.adjudicate("carol", image_id, "moderate")
    db = project.path / "project.sqlite"
    with sqlite3.connect(db) as conn:  # as written by schema version 2
        conn.executescript(
            "DROP TABLE deferrals; ALTER TABLE labels DROP COLUMN scores; "
            "ALTER TABLE adjudications DROP COLUMN supersedes; DROP TABLE skips; "
            "ALTER TABLE adjudications DROP COLUMN seconds; "
            "UPDATE meta SET value = '2' WHERE key = 'schema_version';"
        )
        before = conn.execute("SELECT * FROM labels ORDER BY id").fetchall()
    reopened = open_project(project.path)
    assert reopened.status()["agreement"]["adjudicated"] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "4",
        )
        assert [tuple(r[:-1]) for r in conn.execute("SELECT * FROM labels ORDER BY id")] == [
            tuple(r) for r in before
        ]
    assert reopened.revise_adjudication("carol", image_id, "severe")["previous_label"] == "moderate"
    label_id = reopened.rater_labels("alice")[0]["label_id"]
    assert reopened.correct_label("alice", label_id, "moderate")["previous_label"] == "normal"


def test_a_dispute_no_adjudicator_may_decide_is_reported_with_the_way_out(make_project, capsys):
    from skal_cxr.cli import main

    project = make_project(labels_per_image=2, consensus="adjudicate")
    project.add_rater("alice")
    project.add_rater("carol", role="adjudicator")
    image_id = _label(project, "alice", "normal")
    assert _label(project, "carol", "severe") == image_id
    assert project.next_adjudication("carol")["image_id"] is None
    stuck = project.status()["agreement"]["stuck"]
    assert len(stuck) == 1 and stuck[0]["image_id"] == image_id
    message = stuck[0]["message"]
    assert "\n" not in message and "carol" in message
    assert f"skal-cxr label add-rater {project.path} NAME --adjudicator" in message
    main(["label", "status", str(project.path)])
    assert message in capsys.readouterr().out
    project.add_rater("dave", role="adjudicator")  # the way out: another adjudicator
    assert project.next_adjudication("dave")["image_id"] == image_id
    assert project.status()["agreement"]["stuck"] == []


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf"), "soon"])
def test_a_decision_s_seconds_are_checked_like_a_label_s(make_project, seconds):
    from skal_cxr.labeling import InvalidLabel

    project = make_project(labels_per_image=2, consensus="adjudicate")
    for name in ("alice", "bob"):
        project.add_rater(name)
    project.add_rater("carol", role="adjudicator")
    image_id = _label(project, "alice", "normal")
    _label(project, "bob", "severe")
    with pytest.raises(InvalidLabel, match="seconds must be a finite non-negative number"):
        project.review.decide("carol", image_id, "moderate", seconds=seconds)
    with pytest.raises(InvalidLabel, match="seconds must be a finite non-negative number"):
        project.submit_label("alice", image_id, "normal", seconds=seconds)
    project.review.decide("carol", image_id, "moderate", seconds=0)
    project.add_rater("dave", role="adjudicator")
    with pytest.raises(InvalidLabel, match="seconds must be a finite non-negative number"):
        project.review.revise("dave", image_id, "severe", seconds=seconds)


def test_a_version_3_project_is_migrated_and_keeps_its_rows(make_project):
    import sqlite3

    from skal_cxr.labeling import open_project

    project = make_project(labels_per_image=2, consensus="adjudicate")
    project.add_rater("alice")
    project.add_rater("bob")
    project.add_rater("carol", role="adjudicator")
    image_id = _label(project, "alice", "normal")
    _label(project, "bob", "severe")
    project.review.decide("carol", image_id, "moderate")
    skipped = project.next_image("alice")["image_id"]
    project.skip("alice", skipped)
    db = project.path / "project.sqlite"
    with sqlite3.connect(db) as conn:  # as written by schema version 3
        conn.executescript(
            "DROP TABLE skips; ALTER TABLE adjudications DROP COLUMN seconds; "
            "UPDATE meta SET value = '3' WHERE key = 'schema_version';"
        )
        tables = ("labels", "adjudications", "assignments", "deferrals")
        before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}
    reopened = open_project(project.path)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "4",
        )
        assert conn.execute("SELECT * FROM skips").fetchall() == []  # no event made up
        for t, rows in before.items():
            now = conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
            assert [r[: len(rows[0])] if rows else r for r in now] == rows
        assert conn.execute("SELECT seconds FROM adjudications").fetchall() == [(None,)]
    assert reopened.status()["agreement"]["adjudicated"] == 1
    reopened.add_rater("dave", role="adjudicator")
    reopened.review.revise("dave", image_id, "severe", seconds=5.5)
    reopened.skip("bob", reopened.next_image("bob")["image_id"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MAX(id), seconds FROM adjudications").fetchone() == (2, 5.5)
        assert conn.execute("SELECT COUNT(*) FROM skips").fetchone() == (1,)

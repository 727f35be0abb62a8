"""Zone scores (Brixia, RALE): options, labels from binned totals, exports."""

import csv
import json

import pytest
from _labeling_fakes import CLASSES

from skal_cxr.cli import main
from skal_cxr.exceptions import InvalidLabel, LabelingError
from skal_cxr.labeling._scoring import SCHEMES, check_scoring


@pytest.mark.parametrize(
    "scoring, bins, message",
    [
        ("brixia", None, "--scoring brixia needs --bins, the 2 boundaries of the 3 classes"),
        ("brixia", "7", "--bins needs 2 boundaries for the 3 classes (normal, moderate, severe)"),
        ("brixia", "1,7,12", "--bins needs 2 boundaries"),
        ("brixia", "12,7", "--bins must be increasing totals above 0"),
        ("brixia", "0,12,7", "--bins must be increasing totals above 0"),
        ("brixia", "0,7,19", "largest total, 18; got 19"),
        ("rale", "0,7,49", "largest total, 48; got 49"),
        ("brixia", "0,a,12", "--bins must be comma-separated integers"),
        ("nope", "0,7,12", "--scoring must be one of brixia, rale"),
        (None, "0,7,12", "--bins goes with --scoring"),
    ],
)
def test_scoring_options_are_checked_in_one_place(scoring, bins, message):
    with pytest.raises(LabelingError) as info:
        check_scoring(scoring, bins, CLASSES)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bins_are_simulate_edges_and_a_leading_zero_means_the_same():
    assert check_scoring("brixia", "7,12", CLASSES) == {"scheme": "brixia", "bins": [7, 12]}
    assert check_scoring("brixia", "0,7,12", CLASSES) == {"scheme": "brixia", "bins": [7, 12]}
    assert check_scoring("rale", [10, 20], CLASSES) == {"scheme": "rale", "bins": [10, 20]}


def test_init_refuses_bad_bins_in_one_line_exit_2(tmp_path, phantom_folder, capsys):
    argv = ["label", "init", str(tmp_path / "p"), "--image-dir", str(phantom_folder[0])]
    argv += ["--classes", ",".join(CLASSES), "--scoring", "brixia", "--bins", "0,7,30"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "largest total, 18; got 30" in err
    assert not (tmp_path / "p").exists()


def test_schemes_totals_and_bins():
    brixia = SCHEMES["brixia"]
    assert [z.key for z in brixia.zones] == list("ABCDEF") and brixia.max_total == 18
    rale = SCHEMES["rale"]
    assert [z.key for z in rale.zones] == ["RU", "RL", "LU", "LL"] and rale.max_total == 48
    assert rale.zone_scores([4, 3, 0, 1, 2, 2, 1, 1]) == [12, 0, 4, 1]
    assert rale.total([4, 3, 0, 1, 2, 2, 1, 1]) == 17


@pytest.fixture
def scored(make_project):
    project = make_project(labels_per_image=2, scoring="brixia", bins="0,7,12")
    project.add_rater("alice")
    project.add_rater("bob")
    return project


def test_the_class_is_the_binned_total(scored):
    image_id = scored.next_image("alice")["image_id"]
    with pytest.raises(InvalidLabel, match="send the zone scores"):
        scored.submit_label("alice", image_id, "normal")
    with pytest.raises(InvalidLabel, match="takes 6 scores"):
        scored.submit_label("alice", image_id, None, scores=[1, 2, 3])
    with pytest.raises(InvalidLabel, match="zone C score must be 0-3; got 4"):
        scored.submit_label("alice", image_id, None, scores=[0, 0, 4, 0, 0, 0])
    with pytest.raises(InvalidLabel, match="total 7, which is class 'moderate'"):
        scored.submit_label("alice", image_id, "normal", scores=[1, 1, 1, 2, 1, 1])
    for total, scores, label in [
        (6, [1, 1, 1, 1, 1, 1], "normal"),
        (7, [1, 1, 1, 2, 1, 1], "moderate"),
        (11, [3, 3, 3, 2, 0, 0], "moderate"),
        (12, [3, 3, 3, 3, 0, 0], "severe"),
        (18, [3] * 6, "severe"),
    ]:
        assert scored.scoring.total(scores) == total
        assert scored.scoring.label_of(scores, scored.classes) == label
    out = scored.submit_label("alice", image_id, None, scores=[3, 3, 3, 3, 0, 0])
    assert out["label"] == "severe"
    assert scored.next_image("bob")["image_id"] == image_id
    assert (
        scored.submit_label("bob", image_id, None, scores=[3, 3, 3, 3, 3, 0])["label"] == "severe"
    )
    ids, codes = scored.labeled_set()
    assert dict(zip(ids.tolist(), codes.tolist()))[int(image_id)] == 2
    mine = scored.rater_labels("alice")
    assert mine[0]["scores"] == [3, 3, 3, 3, 0, 0]
    fixed = scored.correct_label("alice", mine[0]["label_id"], None, scores=[1] * 6)
    assert (fixed["previous_label"], fixed["label"]) == ("severe", "normal")


def test_scores_are_exported_in_the_csv_and_the_jsonl(scored, tmp_path):
    image_id = scored.next_image("alice")["image_id"]
    scored.submit_label("alice", image_id, None, scores=[3, 3, 3, 3, 0, 0])
    assert scored.next_image("bob")["image_id"] == image_id
    scored.submit_label("bob", image_id, None, scores=[3, 3, 3, 3, 3, 0])
    scored.export(tmp_path / "l.csv")
    with open(tmp_path / "l.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["label"] == "severe" and row["score_total"] == "13.5"
    assert [row[f"brixia_{z}_alice"] for z in "ABCDEF"] == ["3", "3", "3", "3", "0", "0"]
    assert (row["total_alice"], row["total_bob"]) == ("12", "15")
    assert row["scores_bob"] == "3;3;3;3;3;0"
    scored.export(tmp_path / "e.jsonl", format="jsonl")
    events = [json.loads(line) for line in open(tmp_path / "e.jsonl")]
    labels = [e for e in events if e["event"] == "label"]
    assert [e["scores"] for e in labels] == [[3, 3, 3, 3, 0, 0], [3, 3, 3, 3, 3, 0]]


def test_the_api_takes_scores_and_describes_the_scheme(scored):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from skal_cxr.labeling import create_app

    token = scored.add_rater("carol")
    auth = {"Authorization": f"Bearer {token}"}
    client = TestClient(create_app(scored, allowed_hosts=["testserver"], background=False))
    scheme = client.get("/api/scoring", headers=auth).json()
    assert scheme["name"] == "brixia" and scheme["bins"] == [7, 12]
    assert [z["key"] for z in scheme["zones"]] == list("ABCDEF")
    assert scheme["zones"][0]["box"] == [0.0, 0.0, 0.5, pytest.approx(1 / 3)]
    image_id = client.get("/api/next", headers=auth).json()["image_id"]
    r = client.post(
        "/api/labels", json={"image_id": image_id, "scores": [2, 2, 2, 1, 0, 0]}, headers=auth
    )
    assert r.status_code == 201, r.text
    assert r.json()["label"] == "moderate"
    r = client.post("/api/labels", json={"image_id": image_id, "scores": [9]}, headers=auth)
    assert r.status_code in (409, 422)


def test_the_exported_total_is_read_back_by_simulate_score_column(make_project):
    import numpy as np

    from skal_cxr._cli_parser import build_parser
    from skal_cxr.cli import _data_spec
    from skal_cxr.datasets import load_image_folder
    from skal_cxr.simulation import load_simulation_data
    from skal_cxr.simulation._config import resolve_data_spec

    project = make_project(query_size=24, scoring="rale", bins="0,10,20")
    project.add_rater("alice")
    films = [  # (extent, density) of RU, RL, LU, LL; total; class by 10 and 20
        ([0, 1, 0, 1, 0, 1, 0, 1], 0, "normal"),
        ([3, 3, 0, 1, 0, 1, 0, 1], 9, "normal"),
        ([4, 2, 2, 1, 0, 1, 0, 1], 10, "moderate"),
        ([4, 3, 2, 3, 0, 1, 0, 1], 18, "moderate"),
        ([4, 3, 4, 2, 0, 1, 0, 1], 20, "severe"),
        ([4, 3, 4, 3, 4, 3, 4, 3], 48, "severe"),
    ] * 4
    for scores, total, label in films:
        assert project.scoring.total(scores) == total
        image_id = project.next_image("alice")["image_id"]
        assert project.submit_label("alice", image_id, None, scores=scores)["label"] == label
    out = project.path.parent / "labels.csv"
    project.export(out)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["score_total"]) for r in rows) == sorted(t for _, t, _ in films)
    image_dir = project.config["image_dir"]
    data = load_image_folder(
        out, image_dir, score_column="score_total", bins=[10, 20], classes=CLASSES
    )
    assert dict(zip(data.filenames.tolist(), data.target.tolist())) == {
        r["filename"]: r["label"] for r in rows
    }
    argv = ["simulate", "--csv", str(out), "--image-dir", image_dir, "--score-column"]
    argv += ["score_total", "--bins", "10,20", "--classes", ",".join(CLASSES)]
    sim = load_simulation_data(resolve_data_spec(_data_spec(build_parser().parse_args(argv))))
    counts = np.bincount(np.concatenate([sim.y_pool, sim.y_val, sim.y_test]), minlength=3)
    assert counts.tolist() == [8, 8, 8]

"""LabelingProject: assignment, consensus, agreement, rounds, stopping, export."""

import sqlite3
import threading

import numpy as np
import pytest
from _labeling_fakes import CLASSES, truth_of

from skal_cxr.datasets import load_image_folder
from skal_cxr.labeling import LabelingError, init_project, open_project
from skal_cxr.labeling.read._status import stopping_signal
from skal_cxr.simulation import load_simulation_data
from skal_cxr.simulation._config import resolve_data_spec


def label_all(project, truth, raters, answer=None):
    """Each rater labels everything it is given until nothing is left now."""
    for name in raters:
        while True:
            nxt = project.next_image(name)
            if nxt["image_id"] is None:
                break
            label = (
                answer(name, nxt["image_id"])
                if answer
                else truth_of(project, truth, nxt["image_id"])
            )
            project.submit_label(name, nxt["image_id"], label)


def test_each_image_gets_k_labels_from_different_raters(make_project, phantom_folder):
    project = make_project(labels_per_image=3, reserve_size=0)
    for name in ("a", "b", "c", "d"):
        project.add_rater(name)
    # a, b and d label; c would be a fourth label and gets nothing
    label_all(project, phantom_folder[1], ["a", "b", "d"])
    assert project.next_image("c")["image_id"] is None
    labels = project.labels()
    assert len(labels) == 15
    pairs = [(x["rater"], x["image_id"]) for x in labels]
    assert len(set(pairs)) == 15
    per_image = {}
    for rater, image in pairs:
        per_image.setdefault(image, set()).add(rater)
    assert all(r == {"a", "b", "d"} for r in per_image.values()) and len(per_image) == 5
    assert project.progress()["batch"] == {"done": 5, "total": 5}
    # no argument that would be silently ignored (these once were)
    with pytest.raises(TypeError):
        project.labels(include_withdrawn=True)
    with pytest.raises(TypeError):
        project.progress(rater="a")


def test_consensus_ties_go_to_the_more_severe_class_and_kappa(make_project):
    project = make_project(labels_per_image=2, query_size=4, reserve_size=0)
    for name in ("a", "b"):
        project.add_rater(name)
    votes = {
        "a": ["normal", "normal", "severe", "moderate"],
        "b": ["normal", "moderate", "severe", "moderate"],
    }
    order = {}

    def answer(name, image_id):
        order.setdefault(name, []).append(image_id)
        return votes[name][len(order[name]) - 1]

    label_all(project, None, ["a", "b"], answer)
    assert order["a"] == order["b"]
    ids, codes = project.labeled_set()
    assert [str(i) for i in ids] == order["a"]
    assert [CLASSES[c] for c in codes] == ["normal", "moderate", "severe", "moderate"]
    # Fleiss: 3 of 4 items agree; proportions normal 3/8, moderate 3/8, severe 2/8
    p_e = (3 / 8) ** 2 * 2 + (2 / 8) ** 2
    assert project.kappa() == pytest.approx((0.75 - p_e) / (1 - p_e))
    assert project.status()["kappa"] == pytest.approx(project.kappa())


def test_concurrent_raters_never_over_assign(make_project):
    project = make_project(labels_per_image=2, query_size=5, reserve_size=0)
    names = [f"r{i}" for i in range(8)]
    for name in names:
        project.add_rater(name)
    got = {n: [] for n in names}
    barrier = threading.Barrier(len(names))

    def work(name):
        barrier.wait()
        for _ in range(20):
            nxt = project.next_image(name)
            if nxt["image_id"] is None:
                return
            got[name].append(nxt["image_id"])
            project.submit_label(name, nxt["image_id"], "normal")

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    per_image = {}
    for images in got.values():
        assert len(images) == len(set(images))
        for image in images:
            per_image[image] = per_image.get(image, 0) + 1
    assert sorted(per_image.values()) == [2] * 5
    assert len(project.labels()) == 10


def test_reserve_images_keep_raters_busy_and_are_recorded(make_project, phantom_folder):
    project = make_project(query_size=3, reserve_size=2)
    for name in ("a", "b"):
        project.add_rater(name)
    held = project.next_image("b")["image_id"]  # b holds one image of the batch
    label_all(project, phantom_folder[1], ["a"])
    kinds = [(x["image_id"], x["queue_kind"]) for x in project.labels()]
    assert [k for _, k in kinds] == ["batch", "batch", "reserve", "reserve"]
    assert held not in {i for i, _ in kinds}
    assert project.next_image("a") == {
        "image_id": None,
        "reason": "waiting",
        "round": 0,
        "from_previous_model": False,
    }
    assert project.train_round() is None  # the batch is not complete
    project.submit_label("b", held, truth_of(project, phantom_folder[1], held))
    assert project.train_round() == 1
    rnd = project.rounds()[1]
    assert rnd["n_labeled"] == 5 and sum(rnd["class_counts"]) == 5
    assert len(rnd["queried"]) == 3 and len(rnd["reserve"]) == 2
    labeled = {i for i, _ in kinds} | {held}
    assert not labeled & {str(i) for i in rnd["queried"] + rnd["reserve"]}
    assert len(rnd["stop_predictions"]) == 30
    nxt = project.next_image("a")
    assert nxt["round"] == 1 and nxt["image_id"] == str(rnd["queried"][0])


def test_budget_ends_the_loop(make_project, phantom_folder):
    project = make_project(query_size=4, budget=10, reserve_size=0)
    project.add_rater("a")
    rounds = []
    while True:
        label_all(project, phantom_folder[1], ["a"])
        r = project.train_round()
        if r is None:
            break
        rounds.append(r)
    assert rounds == [1, 2, 3]
    assert [r["n_queried"] for r in project.rounds()] == [4, 4, 2, 0]
    assert project.next_image("a")["reason"] == "done"
    stop = project.status()["stopping"]
    assert stop["budget_left"] == 0 and stop["stop"] is True
    assert len(stop["kappa_window"]) == 2


def test_stopping_signal_follows_bloodgood_and_vijay_shanker(make_project):
    project = make_project(stop_window=2, stop_threshold=0.9)
    a, b = [0, 1, 2, 0, 1, 2, 0, 1], [0, 1, 2, 0, 1, 2, 0, 0]
    rounds = [{"stop_predictions": None}] + [{"stop_predictions": p} for p in (a, b, b)]
    signal = stopping_signal(project.config, rounds[:3], n_queued=5)
    assert signal["stop"] is False and len(signal["kappa_window"]) == 1
    signal = stopping_signal(project.config, rounds, n_queued=5)
    from sklearn.metrics import cohen_kappa_score

    assert signal["kappa_window"] == pytest.approx([cohen_kappa_score(a, b), 1.0])
    assert np.mean(signal["kappa_window"]) >= 0.9 and signal["stop"] is True
    assert signal["budget_left"] is None and signal["threshold"] == 0.9


def test_k_center_cold_start(make_project):
    project = make_project(cold_start="k_center", query_size=6, reserve_size=3)
    [rnd] = project.rounds()
    assert rnd["strategy"] == "k_center"
    assert len(set(rnd["queried"] + rnd["reserve"])) == 9


def test_export_is_read_back_by_load_image_folder_and_simulate(
    make_project, phantom_folder, tmp_path
):
    project = make_project(labels_per_image=2, query_size=12, reserve_size=0)
    for name in ("ann", "bo"):
        project.add_rater(name)
    label_all(project, phantom_folder[1], ["ann", "bo"])
    out = tmp_path / "labels.csv"
    assert project.export(out) == 12
    data = load_image_folder(out, phantom_folder[0], image_size=16)
    assert len(data.target) == 12
    assert all(phantom_folder[1][f] == t for f, t in zip(data.filenames, data.target))
    both = load_image_folder(
        out, phantom_folder[0], label_columns=["rater_ann", "rater_bo"], classes=CLASSES
    )
    assert both.agreement["n_raters"] == 2
    spec = resolve_data_spec(
        {
            "source": "folder",
            "csv": str(out),
            "image_dir": str(phantom_folder[0]),
            "image_size": 16,
            # 12 images: a validation split would miss a class
            "val_size": 0,
            "test_size": 0.5,
        }
    )
    assert load_simulation_data(spec).summary()["n_pool"] > 0


def test_init_refuses_bad_settings(tmp_path, phantom_folder):
    image_dir = phantom_folder[0]
    cases = [
        ({"classes": ["a"]}, "two distinct"),
        ({"classes": ["a", "a"]}, "two distinct"),
        ({"strategy": "psychic"}, "unknown strategies"),
        ({"budget": 3, "query_size": 5}, "smaller than the initial"),
        ({"labels_per_image": 0}, "labels_per_image"),
        ({"cold_start": "oracle"}, "cold_start"),
        ({"consensus": "vote"}, "consensus"),
        ({"initial_size": 500}, "larger than the pool"),
        ({"pool_size": "some"}, "'pool_size' parameter of init_project must be"),
        ({"pool_size": 3, "query_size": 5}, "pool_size \\(3\\) is smaller than query_size"),
        (
            {"pool_size": 8, "query_size": 5, "reserve_size": 9},
            "pool_size \\(8\\) is smaller than reserve_size",
        ),
    ]
    for options, message in cases:
        settings = {"classes": ["normal", "abnormal"], **options}
        with pytest.raises(LabelingError, match=message):
            init_project(tmp_path / "p", image_dir, **settings)
        assert not (tmp_path / "p").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(LabelingError, match="not empty"):
        init_project(tmp_path / "full", image_dir, ["a", "b"])
    with pytest.raises(LabelingError, match="not a labeling project"):
        open_project(tmp_path / "full")


def test_pool_size_auto_scores_everything_up_to_2000_images_then_a_random_2000():
    from skal_cxr.labeling._init import _resolve_pool_size

    assert _resolve_pool_size("auto", 2000, 20, 20) is None
    assert _resolve_pool_size("auto", 2001, 20, 20) == 2000
    assert _resolve_pool_size("auto", 10_000, 20, 2500) == 2500  # never below the reserve
    assert _resolve_pool_size("auto", 10_000, 3000, 20) == 3000
    assert _resolve_pool_size(None, 10_000, 20, 20) is None
    assert _resolve_pool_size(500, 10_000, 20, 20) == 500


def test_pool_size_auto_of_a_small_pool_is_the_whole_pool(make_project):
    assert make_project().config["engine"]["pool_size"] is None  # 60 images


def test_a_round_scores_a_seeded_random_subset_of_pool_size_images(make_project, phantom_folder):
    from skal_cxr._random import round_seed

    project = make_project(pool_size=5, reserve_size=0)
    assert project.config["engine"]["pool_size"] == 5
    project.add_rater("a")
    label_all(project, phantom_folder[1], ["a"])
    assert project.train_round() == 1
    queued = [i - 1 for i in project.rounds()[0]["queried"]]
    unlabeled = np.setdiff1d(np.arange(project.n_images()), queued)
    seed = round_seed(project.config["random_state"], 0)  # the simulation's first query
    subset = unlabeled[np.random.default_rng(seed).choice(len(unlabeled), 5, replace=False)]
    # a subset as large as the batch: the batch is exactly that subset
    assert sorted(i - 1 for i in project.rounds()[1]["queried"]) == sorted(subset.tolist())


def test_schema_version_is_checked(make_project):
    project = make_project()
    with sqlite3.connect(project.path / "project.sqlite") as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LabelingError, match="schema version 99"):
        open_project(project.path)


def test_database_settings(make_project):
    project = make_project()
    with project.db.connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO queue VALUES (9999, 0, 'batch', 999)")
    table = project.image_table()
    assert len(table) == 60 and table[0][1] == "im000.png" and len(table[0][2]) == 64


def test_rater_names(make_project):
    project = make_project()
    project.add_rater("Dr. Smith")
    with pytest.raises(LabelingError, match="already exists"):
        project.add_rater("Dr. Smith")
    for bad in ("", "a,b", "x\ny", "z" * 101):
        with pytest.raises(LabelingError, match="rater name"):
            project.add_rater(bad)
    assert project.raters() == ["Dr. Smith"]
    project.add_rater("Dr. Jones", "adjudicator")
    assert [project.rater_role(n) for n in project.raters()] == ["rater", "adjudicator"]


def test_the_served_address_is_read_back(make_project):
    project = make_project()
    assert project.serve_address() == {}  # never served
    project.record_serve_address("0.0.0.0", 9123, "labels.example.org")
    reopened = open_project(project.path)
    assert reopened.serve_address() == {
        "host": "0.0.0.0",
        "port": 9123,
        "public_host": "labels.example.org",
    }


def test_images_are_added_after_the_pool_only_if_it_did_not_change(make_project):
    project = make_project()
    n = project.n_images()
    with pytest.raises(LabelingError, match="changed while images were added"):
        project.add_images([("new.png", "0" * 64, None, None)], n - 1)  # saw an older pool
    assert project.n_images() == n
    project.add_images([("new.png", "0" * 64, "p1", "20240101")], n)
    assert project.image_table()[-1] == (str(n + 1), "new.png", "0" * 64, "p1")
    assert project.related_images(str(n + 1)) == [
        {"image_id": str(n + 1), "date": "20240101", "current": True}
    ]


def test_an_abandoned_image_goes_to_another_rater_after_the_lease(make_project):
    import time

    from skal_cxr.labeling import Conflict

    project = make_project(query_size=1, reserve_size=0, lease_seconds=0.2)
    for name in ("a", "b"):
        project.add_rater(name)
    held = project.next_image("a")["image_id"]
    assert project.next_image("b")["image_id"] is None  # still a's
    time.sleep(0.3)
    assert project.next_image("b")["image_id"] == held
    with pytest.raises(Conflict, match="held too long"):
        project.submit_label("a", held, "normal")
    project.submit_label("b", held, "normal")
    assert project.next_image("a")["image_id"] is None
    assert project.progress()["batch"] == {"done": 1, "total": 1}


def test_a_round_scored_on_dask_queries_what_a_local_round_queries(
    tmp_path, phantom_folder, monkeypatch
):
    """``score_scheduler`` (``label serve --score-scheduler``) moves the scoring only."""
    distributed = pytest.importorskip("distributed")
    import joblib
    from _labeling_fakes import TINY

    from skal_cxr import _dask
    from skal_cxr.strategies._base import QueryContext

    monkeypatch.setattr(QueryContext, "chunk_size", 16)  # chunk the tiny pool
    calls = []
    reduce_on_dask = _dask.reduce_on_dask
    monkeypatch.setattr(
        _dask, "reduce_on_dask", lambda *a, **k: calls.append(len(a[1])) or reduce_on_dask(*a, **k)
    )
    rounds = []
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=":0",
    ) as cluster:
        for name, scheduler in (("here", None), ("dask", cluster.scheduler_address)):
            project = init_project(
                tmp_path / name, phantom_folder[0], CLASSES, **{**TINY, "query_size": 5}
            )
            project.score_scheduler = scheduler
            project.add_rater("a")
            label_all(project, phantom_folder[1], ["a"])
            assert project.train_round() == 1
            rounds.append(project.rounds()[1])
            assert open_project(project.path).prediction(rounds[-1]["queried"][0])
            # the address is a setting of the session, not saved with the model
            assert joblib.load(project.path / "checkpoints" / "round-1.joblib").scheduler is None
    assert calls == [50, 45]  # the batch and the reserve query of 60 - 10 labeled, on Dask
    for key in ("queried", "scores", "reserve", "stop_predictions"):
        assert rounds[0][key] == rounds[1][key]


@pytest.mark.parametrize("cold_start", ["typicality", "probcover"])
def test_label_free_cold_start_on_the_cached_pca_view(make_project, cold_start):
    from skal_cxr.embeddings import PixelPCA
    from skal_cxr.labeling._settings import cache_dir
    from skal_cxr.labeling.worker._rounds import pool_embedding
    from skal_cxr.strategies import STRATEGIES

    project = make_project(cold_start=cold_start, query_size=6, reserve_size=3)
    [rnd] = project.rounds()
    assert rnd["strategy"] == cold_start
    # the view was computed at init and cached beside the image cache
    folder = cache_dir(project.path, project.config["image_size"])
    assert len(list(folder.glob("pca-*.npy"))) == 1
    features = pool_embedding(project)
    expected = PixelPCA(50, random_state=project.round_config.seed).fit_transform(
        np.asarray(project.pool_array())
    )
    np.testing.assert_allclose(np.abs(features), np.abs(expected), rtol=1e-3, atol=1e-4)
    # batch then reserve: the strategy's first 9 picks on that view, ids from 1
    order, _ = STRATEGIES[cold_start](
        None,
        features,
        9,
        embedding="precomputed",
        random_state=np.random.default_rng([project.round_config.seed, 1]),
    )
    assert rnd["queried"] + rnd["reserve"] == (np.asarray(order) + 1).tolist()


def test_stopping_signal_says_stop_when_the_pool_is_exhausted(make_project):
    """No budget, every image queued: nothing is left to label, so stop."""
    project = make_project(query_size=60, reserve_size=0)  # round 0 queues the whole pool
    assert project.config["budget"] is None
    rounds = [{"stop_predictions": None}]
    signal = stopping_signal(project.config, rounds, n_queued=59, n_images=60)
    assert signal["stop"] is False and signal["pool_left"] == 1
    signal = stopping_signal(project.config, rounds, n_queued=60, n_images=60)
    assert signal["stop"] is True and signal["pool_left"] == 0
    stop = project.status()["stopping"]
    assert stop["pool_left"] == 0 and stop["stop"] is True

"""The round loop (engine/_loop.py): known answers recorded before it was written once.

``tests/data/loop_records.json`` holds the records (timings left out) that
:func:`skal_cxr.simulation.simulate` wrote for fixed seeds with the round
written in the simulation itself; ``tests/data/low_budget_records.json``
the low-budget study's records with its own private round loop. The loop
must pick the same images and give the same models.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from skal_cxr.engine import ActiveLoop, RoundConfig, initial_set, query_round
from skal_cxr.simulation import read_records, simulate

DATA = Path(__file__).parent / "data"
BASE = dict(
    data={"source": "phantoms", "n_samples": 200, "image_size": 16},
    model="cnn",
    seeds=[0],
    n_initial=10,
    query_size=8,
    budget=34,
    n_mc_samples=4,
    estimator={"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
    training={"max_epochs": 1, "min_train_steps": 2},
    report=False,
    baseline=False,
)
KEYS = ("strategy", "seed", "round", "n_labeled", "class_counts", "queried", "queried_counts")
EXPECTED = json.loads((DATA / "loop_records.json").read_text())


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_simulation_through_the_loop_picks_the_images_it_picked_before(case, tmp_path):
    expected = EXPECTED[case]
    simulate(tmp_path, **{**BASE, **expected["params"]})
    got = sorted(read_records(tmp_path), key=lambda r: r["round"])
    assert len(got) == len(expected["records"]) == 4
    for rec, old in zip(got, expected["records"]):
        assert {k: rec[k] for k in KEYS} == {k: old[k] for k in KEYS}
        assert rec["n_epochs"] == old["n_epochs"]
        for name, value in old["metrics"].items():  # the same models
            assert rec["metrics"][name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


def _toy(n=60, seed=0):
    from skal_cxr.datasets import make_cxr_phantoms

    X, y = make_cxr_phantoms(n, image_size=16, n_classes=2, random_state=seed)
    return np.asarray(X, dtype=np.float32)[:, None], np.asarray(y)


def _config(**params):
    return RoundConfig.from_params(
        strategy="max_entropy",
        seed=0,
        model="cnn",
        n_mc_samples=2,
        estimator={"module__width": 4, "module__n_blocks": 2, "device": "cpu"},
        training={"max_epochs": 1, "min_train_steps": 2},
        **params,
    )


def test_a_step_fits_evaluates_queries_and_the_oracle_labels_the_next_fit():
    X, y = _toy()
    asked = []

    def oracle(idx):
        asked.append(idx.tolist())
        return y[idx]

    loop = ActiveLoop(_config(), X, oracle, [0, 1, 2, 3], n_classes=2)
    first = loop.step(5, random_state=11, evaluate=lambda learner: len(learner.y_training_))
    assert first.round == 0 and first.n_labeled == 4 and first.evaluation == 4
    assert asked == [[0, 1, 2, 3]] and len(first.queried) == 5
    assert not set(first.queried) & {0, 1, 2, 3}
    assert first.n_epochs == loop.learner.estimator_.n_epochs_
    second = loop.step(0, evaluate=lambda learner: len(learner.y_training_))
    # the oracle labels exactly the batch the previous round queried
    assert asked[1] == list(first.queried)
    assert second.round == 1 and second.n_labeled == 9 and second.evaluation == 9
    assert second.labeled == (0, 1, 2, 3, *first.queried)
    assert second.queried == () and second.query_time is None


def test_one_step_with_the_labels_at_hand_is_a_round_of_the_long_loop():
    # a labeling project's worker steps once with the labels it has: the round
    # it makes is the one the loop answered by an oracle made
    X, y = _toy()
    config = _config()
    loop = ActiveLoop(config, X, lambda idx: y[idx], [0, 1, 2, 3], n_classes=2)
    loop.step(5, random_state=11)
    second = loop.step(4, random_state=12)
    once = ActiveLoop(config, X, lambda idx: y[idx], second.labeled, n_classes=2)
    again = once.step(4, random_state=12)
    assert again.queried == second.queried and again.scores == second.scores


def test_query_excludes_the_labeled_and_the_excluded_positions():
    X, y = _toy()
    loop = ActiveLoop(_config(), X, lambda idx: y[idx], range(6), n_classes=2, exclude=[6, 7])
    loop.fit()
    queried, scores, _ = loop.query(52, random_state=3)
    assert sorted(queried) == list(range(8, 60))
    same, _, _ = query_round(loop.learner, X, list(range(8)), 52, loop.config, 3)
    assert same == queried and len(scores) == 52


def test_initial_set_needs_no_learner_and_gives_the_cold_starts_order():
    from skal_cxr.strategies import typicality

    X, _ = _toy()
    features = X.reshape(len(X), -1)[:, :20].astype(np.float64)
    batch, reserve = initial_set("typicality", 5, 3, features=features, n_reserve=4)
    order, _ = typicality(
        None, features, 9, embedding="precomputed", random_state=np.random.default_rng([3, 1])
    )
    np.testing.assert_array_equal(np.r_[batch, reserve], order)
    five, _ = typicality(
        None, features, 5, embedding="precomputed", random_state=np.random.default_rng([3, 1])
    )
    np.testing.assert_array_equal(initial_set("typicality", 5, 3, features=features), np.sort(five))


LOW_BUDGET = json.loads((DATA / "low_budget_records.json").read_text())


@pytest.mark.slow
def test_the_low_budget_study_through_the_loop_gives_its_records_from_before():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_low_budget.py"
    spec = importlib.util.spec_from_file_location("bench_low_budget_loop", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_low_budget_loop"] = bench
    try:
        spec.loader.exec_module(bench)  # puts benchmarks/ on the path
        import _low_budget  # the study's code, which the script drives

        data = bench.load_data("phantoms")
        data = _low_budget.Data(
            data.X_pool[:300],
            data.y_pool[:300],
            data.X_val[:100],
            data.y_val[:100],
            data.X_test[:100],
            data.y_test[:100],
            data.minority,
            "phantoms",
        )
        for arm, expected in LOW_BUDGET.items():
            got = bench.run_one(arm, 0, data, [10, 20, 30], quick=True)
            assert len(got) == len(expected)
            for rec, old in zip(got, expected):
                for key, value in old.items():
                    if isinstance(value, float):
                        assert rec[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (arm, key)
                    else:
                        assert rec[key] == value, (arm, key)
    finally:
        sys.modules.pop("bench_low_budget_loop", None)

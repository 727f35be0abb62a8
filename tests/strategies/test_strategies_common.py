"""Behaviour every strategy shares (the template run against each of them)."""

import inspect

import numpy as np
import pytest
from _strategy_fakes import ALL_STRATEGIES, MC_STRATEGIES, N_POOL, FakeMC

from skal_cxr.strategies import STRATEGIES

NAMES = sorted(ALL_STRATEGIES)
# strategies that never evaluate the estimator on the pool
LABEL_FREE = {
    "random",
    "class_balanced_random",
    "typicality",
    "probcover",
    "typicality_then_max_entropy",
    "typicality_until_5_then_max_entropy",
}


def test_registry_names():
    assert set(STRATEGIES) == {
        "random",
        "max_entropy",
        "margin",
        "least_confident",
        "mean_std",
        "variation_ratios",
        "bald",
        "batch_bald",
        "power_bald",
        "coreset",
        "typicality",
        "probcover",
        "badge",
        "typicality_then_max_entropy",
        "dropquery",
        "typicality_until_5_then_max_entropy",
    }
    for strategy in STRATEGIES.values():
        params = inspect.signature(strategy).parameters
        assert list(params)[:3] == ["learner", "X_pool", "n_instances"]
        assert {"pool_size", "n_mc_samples", "random_state"} <= set(params)
        assert "Parameters" in strategy.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_unique_indices_into_pool(name, learner, pool):
    idx, scores = ALL_STRATEGIES[name](learner, pool, n_instances=7)
    assert idx.shape == (7,) and np.issubdtype(idx.dtype, np.integer)
    assert scores.shape == (7,) and scores.dtype == np.float64
    assert len(np.unique(idx)) == 7 and idx.min() >= 0 and idx.max() < N_POOL


@pytest.mark.parametrize("name", NAMES)
def test_whole_pool(name, learner, pool):
    idx, _ = ALL_STRATEGIES[name](learner, pool, n_instances=N_POOL, random_state=0)
    assert sorted(idx) == list(range(N_POOL))


@pytest.mark.parametrize("name", NAMES)
def test_seeded_results_repeat(name, learner, pool):
    strategy = ALL_STRATEGIES[name]
    first = strategy(learner, pool, n_instances=5, pool_size=20, random_state=3)
    again = strategy(learner, pool, 5, pool_size=20, random_state=3)
    for a, b in zip(first, again):  # indices and scores
        np.testing.assert_array_equal(a, b)
    # without random_state the estimator's random_state (0) seeds the query
    np.testing.assert_array_equal(
        strategy(learner, pool, 5, pool_size=20)[0], strategy(learner, pool, 5, pool_size=20)[0]
    )


@pytest.mark.parametrize("name", NAMES)
def test_pool_subsample_maps_back(name, learner, pool):
    """Indices point at pool images the estimator actually scored."""
    order = np.random.default_rng(1).permutation(N_POOL)
    shuffled = pool[order]  # position p holds image id order[p]
    idx, _ = ALL_STRATEGIES[name](learner, shuffled, n_instances=4, pool_size=12, random_state=0)
    seen = learner.estimator.__dict__.get("seen_ids_")
    if name not in LABEL_FREE:
        assert len(seen) == 12 and set(order[idx]) <= set(seen)
    assert len(set(idx)) == 4


# The candidates drawn with pool_size=12 and random_state=0: 12 of the 40 pool
# positions, sorted (numpy's default_rng(0).choice(40, 12, replace=False)).
SUBSET_SEED_0 = [0, 1, 2, 6, 8, 10, 15, 19, 24, 25, 30, 36]


@pytest.mark.parametrize("name", sorted(LABEL_FREE))
def test_label_free_pool_subsample_maps_back(name, learner, pool):
    """Label-free picks are pool positions of the drawn candidates, not their ranks."""
    order = np.random.default_rng(1).permutation(N_POOL)
    shuffled = pool[order]
    strategy = ALL_STRATEGIES[name]
    idx, _ = strategy(learner, shuffled, n_instances=4, pool_size=12, random_state=0)
    assert set(idx.tolist()) <= set(SUBSET_SEED_0)
    # asking for every candidate returns exactly the drawn positions
    idx, _ = strategy(learner, shuffled, n_instances=12, pool_size=12, random_state=0)
    assert sorted(idx.tolist()) == SUBSET_SEED_0


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_transforms_pool_first(name, pipeline_learner, learner, pool):
    strategy = ALL_STRATEGIES[name]
    np.testing.assert_array_equal(
        strategy(pipeline_learner, pool, 5, random_state=0)[0],
        strategy(learner, pool, 5, random_state=0)[0],
    )


@pytest.mark.parametrize("name", NAMES)
def test_errors(name, learner, pool):
    strategy = ALL_STRATEGIES[name]
    with pytest.raises(ValueError, match="empty"):
        strategy(learner, pool[:0], n_instances=1)
    with pytest.raises(ValueError, match="larger than the pool"):
        strategy(learner, pool[:3], n_instances=4)
    with pytest.raises(ValueError, match="n_instances"):
        strategy(learner, pool, n_instances=0)
    with pytest.raises(ValueError, match="pool_size"):
        strategy(learner, pool, n_instances=5, pool_size=3)


@pytest.mark.parametrize("name", sorted(MC_STRATEGIES))
def test_mc_strategies_need_predict_proba_samples(name, proba_learner, pool):
    with pytest.raises(TypeError, match="FakeProba has no predict_proba_samples"):
        STRATEGIES[name](proba_learner, pool, n_instances=2)


@pytest.mark.parametrize("name", ["random", "max_entropy", "margin", "least_confident"])
def test_deterministic_strategies_fall_back_to_predict_proba(name, proba_learner, learner, pool):
    strategy = STRATEGIES[name]
    np.testing.assert_array_equal(
        strategy(proba_learner, pool, 5, random_state=0)[0],
        strategy(learner, pool, 5, random_state=0)[0],
    )


def test_coreset_needs_embed(proba_learner, pool):
    with pytest.raises(TypeError, match="FakeProba has no embed"):
        STRATEGIES["coreset"](proba_learner, pool, n_instances=2)


@pytest.mark.parametrize("name", sorted(MC_STRATEGIES))
def test_one_mc_pass_per_query(name, learner, pool):
    ALL_STRATEGIES[name](learner, pool, n_instances=6)
    assert learner.estimator.n_calls_ == 1


def test_class_balanced_shares_the_mc_pass(learner, pool):
    ALL_STRATEGIES["class_balanced_bald"](learner, pool, n_instances=6)
    assert learner.estimator.n_calls_ == 1


def test_n_mc_samples_reaches_the_estimator(learner, pool, monkeypatch):
    calls = []
    original = FakeMC.predict_proba_samples

    def spy(self, X, n_mc_samples=None):
        calls.append(n_mc_samples)
        return original(self, X, n_mc_samples)

    monkeypatch.setattr(FakeMC, "predict_proba_samples", spy)
    STRATEGIES["bald"](learner, pool, n_instances=2, n_mc_samples=4)
    assert calls == [4]


def test_ties_are_broken_at_random(learner, pool):
    """Equal scores: picks vary with the seed instead of favouring low indices."""
    learner.estimator.table = np.full_like(learner.estimator.table, 1 / 3)
    picks = {
        tuple(STRATEGIES["max_entropy"](learner, pool, 3, random_state=s)[0]) for s in range(5)
    }
    assert len(picks) > 1

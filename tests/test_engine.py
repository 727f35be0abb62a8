"""The round engine: its typed configuration and the round primitives."""

import json

import numpy as np
import pytest

from skal_cxr.engine import (
    ROUND_DEFAULTS,
    RoundConfig,
    build_estimator,
    cold_start_batch,
    initial_indices,
    query_round,
    torch_threads,
)
from skal_cxr.exceptions import ConfigError
from skal_cxr.simulation import resolve_config


def test_round_config_defaults_are_the_simulations():
    config = resolve_config(strategies=["random"], seeds=[0])
    rounds = RoundConfig.from_dict(config, strategy="random", seed=0)
    assert rounds == RoundConfig(strategy="random", seed=0)
    for key, value in ROUND_DEFAULTS.items():
        assert config[key] == value == getattr(rounds, key)


def test_round_config_checks_its_parameters_once_with_one_line_errors():
    rounds = RoundConfig.from_params(
        strategy="bald",
        seed=3,
        query_size=5,
        estimator={"module__width": 4},
        training={"max_epochs": 2},
    )
    assert rounds.estimator["module__width"] == 4 and rounds.estimator["lr"] == 1e-3
    assert rounds.training == {**ROUND_DEFAULTS["training"], "max_epochs": 2}
    assert json.loads(json.dumps(rounds.to_dict())) == rounds.to_dict()
    assert RoundConfig.from_dict(rounds.to_dict()) == rounds
    for params, message in [
        ({"strategy": "psychic"}, "unknown strategies"),
        ({"seed": -1}, "seed"),
        ({"query_size": 0}, "query_size"),
        ({"estimator": {"colour": 1}}, "unknown estimator setting"),
        ({"pool_size": 2, "query_size": 3}, "smaller than query_size"),
        ({"class_weight": "inverse"}, "class_weight"),
    ]:
        with pytest.raises(ConfigError, match=message) as info:
            RoundConfig.from_params(**params)
        assert "\n" not in str(info.value)


def test_build_estimator_is_seeded_by_the_config():
    rounds = RoundConfig(
        seed=7, model="cnn", estimator={**ROUND_DEFAULTS["estimator"], "device": "cpu"}
    )
    est = build_estimator(rounds, 3)
    assert est.random_state == 7 and list(est.classes) == [0, 1, 2]
    assert build_estimator(rounds, 3, seed=2).random_state == 2
    assert build_estimator(rounds.to_dict(), 2).random_state == 7  # a stored dict


def test_query_round_queries_only_unlabeled_positions():
    class Learner:  # the strategy sees the unlabeled images, in increasing order
        def query(self, X, n, return_metrics, n_mc_samples, pool_size, random_state):
            self.seen = (np.asarray(X).ravel().tolist(), n_mc_samples, pool_size)
            return np.array([2, 0]), None, np.array([0.9, 0.5])

    X = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1)
    learner = Learner()
    queried, scores, seconds = query_round(
        learner, X, [1, 3], 2, RoundConfig(n_mc_samples=4, pool_size=None), 0
    )
    assert learner.seen == ([0.0, 2.0, 4.0, 5.0], 4, None)
    assert queried == [4, 0] and scores == [0.9, 0.5] and seconds >= 0


def test_initial_indices_and_torch_threads():
    y = np.repeat([0, 1], 10)
    chosen = initial_indices(y, 4, seed=0)
    assert np.bincount(y[chosen]).tolist() == [2, 2]
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_initial_set_is_label_free_unless_stratified():
    from skal_cxr.engine import check_initial, initial_set, uses_labels
    from skal_cxr.strategies import typicality

    rng = np.random.default_rng(0)
    X = rng.random((40, 6, 6), dtype=np.float32)
    y = np.r_[np.zeros(36, int), np.ones(4, int)]
    # random: the plain draw of initial_indices, whatever the labels say
    np.testing.assert_array_equal(
        initial_set("random", 8, 3, y_pool=y),
        initial_indices(np.zeros(40, int), 8, 3, stratify=False),
    )
    np.testing.assert_array_equal(
        initial_set("random", 8, 3, y_pool=1 - y), initial_set("random", 8, 3, X_pool=X)
    )
    # stratified reads the labels: 8 of 40 with 10 % positives -> about 1 positive
    strat = initial_set("stratified", 10, 3, y_pool=y)
    assert y[strat].sum() == 1 and uses_labels("stratified") and not uses_labels("random")
    # a label-free strategy chooses: typicality's picks, sorted
    expected = typicality(None, X, 5, random_state=np.random.default_rng([3, 1]))[0]
    np.testing.assert_array_equal(initial_set("typicality", 5, 3, X_pool=X), np.sort(expected))
    # "strategy": the run's own label-free strategy, else random
    np.testing.assert_array_equal(
        initial_set("strategy", 5, 3, X_pool=X, strategy="typicality_then_max_entropy"),
        np.sort(expected),
    )
    np.testing.assert_array_equal(
        initial_set("strategy", 5, 3, X_pool=X, strategy="bald"),
        initial_set("random", 5, 3, X_pool=X),
    )
    with pytest.raises(ConfigError, match="label-free strategy .*got 'bald'"):
        check_initial("bald", error=ConfigError)
    with pytest.raises(ConfigError, match="initial must be"):
        resolve_config(initial="everything")
    assert resolve_config()["initial"] == "strategy"  # label-free: the study's design


def _two_clusters(n_big=30, n_small=10, seed=0):
    """Features of two tight clusters far apart: a big one and a small one."""
    rng = np.random.default_rng(seed)
    big = rng.normal(0.0, 0.1, (n_big, 2))
    small = rng.normal(0.0, 0.1, (n_small, 2)) + [10.0, 0.0]
    return np.r_[big, small].astype(np.float32)


def test_cold_start_batch_random_is_the_simulations_label_free_initial_set():
    config = RoundConfig.from_params(seed=3)
    batch, reserve = cold_start_batch("random", 50, 5, 7, config=config, n_classes=2)
    expected = initial_indices(np.zeros(50, dtype=np.int64), 5, 3, stratify=False)
    np.testing.assert_array_equal(batch, expected)
    assert len(reserve) == 7 and not set(reserve) & set(batch)


def test_cold_start_batch_typicality_takes_the_centre_of_each_cluster():
    features = _two_clusters()
    config = RoundConfig.from_params(seed=0)
    batch, reserve = cold_start_batch(
        "typicality", len(features), 2, 0, config=config, n_classes=2, features=features
    )
    # two k-means clusters: one image from each, each its cluster's most typical one
    assert sorted(b >= 30 for b in batch) == [False, True]
    for b, members in ((min(batch), np.arange(30)), (max(batch), np.arange(30, 40))):
        centre = features[members].mean(axis=0)
        distance = np.linalg.norm(features[members] - centre, axis=1)
        assert distance[members == b][0] <= np.quantile(distance, 0.5)
    assert len(reserve) == 0
    batch5, reserve = cold_start_batch(
        "typicality", len(features), 2, 3, config=config, n_classes=2, features=features
    )
    assert len(reserve) == 3 and len(set(batch5) | set(reserve)) == 5


def test_cold_start_batch_k_center_reads_the_images_and_refuses_what_it_lacks():
    X = np.random.default_rng(0).random((40, 1, 16, 16)).astype(np.float32)
    config = RoundConfig.from_params(seed=0)
    batch, reserve = cold_start_batch("k_center", 40, 4, 2, config=config, n_classes=2, X=X)
    assert len(set(batch) | set(reserve)) == 6
    # the untrained network it embeds the pool with follows from the seed
    again = cold_start_batch("k_center", 40, 4, 2, config=config, n_classes=2, X=X)
    np.testing.assert_array_equal(again[0], batch)
    np.testing.assert_array_equal(again[1], reserve)
    with pytest.raises(ValueError, match="needs the pool images"):
        cold_start_batch("k_center", 40, 4, 2, config=config, n_classes=2)
    with pytest.raises(ValueError, match="needs the pool's features"):
        cold_start_batch("probcover", 40, 4, 2, config=config, n_classes=2)
    with pytest.raises(ValueError, match="must be one of"):
        cold_start_batch("stratified", 40, 4, 2, config=config, n_classes=2)

"""BatchBALD, PowerBALD, core-set and class-balanced batches."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from _strategy_fakes import FakeMC
from numpy.testing import assert_allclose
from scipy.special import entr

from skal_cxr.strategies import (
    bald,
    bald_scores,
    batch_bald,
    batch_bald_scores,
    class_balanced,
    class_quotas,
    coreset,
    coreset_scores,
    joint_entropy,
    k_center_greedy,
    power_bald,
    power_probabilities,
    random_sampling,
)
from skal_cxr.strategies._power import power_sample


def brute_force_joint_entropy(samples):
    n_samples, n_images, n_classes = samples.shape
    total = 0.0
    for ys in itertools.product(range(n_classes), repeat=n_images):
        p = np.mean(
            [np.prod([samples[k, i, y] for i, y in enumerate(ys)]) for k in range(n_samples)]
        )
        total -= p * np.log(p) if p > 0 else 0.0
    return total


def dirichlet_samples(shape, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), size=shape[:-1])


@pytest.mark.parametrize("shape", [(5, 3, 3), (4, 4, 2), (1, 2, 4), (6, 1, 3)])
def test_joint_entropy_matches_enumeration(shape):
    samples = dirichlet_samples(shape)
    assert joint_entropy(samples) == pytest.approx(brute_force_joint_entropy(samples))


def test_batch_bald_scores_known_answers():
    samples = dirichlet_samples((6, 5, 3), seed=1)
    cond = entr(samples).sum(axis=2).mean(axis=0)
    assert_allclose(batch_bald_scores(samples), bald_scores(samples), atol=1e-12)
    scores = batch_bald_scores(samples, [0, 3])
    assert np.isnan(scores[[0, 3]]).all()
    for x in (1, 2, 4):
        expected = joint_entropy(samples[:, [0, 3, x]]) - cond[[0, 3, x]].sum()
        assert scores[x] == pytest.approx(expected)


def test_batch_bald_sampled_configurations_estimate_exact():
    samples = dirichlet_samples((30, 9, 3), seed=2)
    selected = list(range(8))  # 3**8 = 6561 configurations > 1000: sampled
    sampled = batch_bald_scores(samples, selected, max_configurations=1000, random_state=0)
    exact = batch_bald_scores(samples, selected, max_configurations=10_000)
    assert sampled[8] == pytest.approx(exact[8], abs=0.05)


def _independent_bits_learner():
    """Images 0 and 1 are copies (bit A); image 2 reads bit B; image 3 is certain."""
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    table = np.zeros((4, 4, 2))
    table[:, 0] = table[:, 1] = np.stack([1 - a, a], axis=1)
    table[:, 2] = np.stack([np.where(b, 0.05, 0.95), np.where(b, 0.95, 0.05)], axis=1)
    table[:, 3] = [1.0, 0.0]
    est = FakeMC(table).fit(None, None)
    pool = np.broadcast_to(np.arange(4.0)[:, None, None], (4, 2, 2))
    return SimpleNamespace(estimator=est, X_training=None), pool


def test_batch_bald_avoids_redundant_copies():
    learner, pool = _independent_bits_learner()
    assert set(bald(learner, pool, 2, random_state=0)[0]) == {0, 1}
    idx, values = batch_bald(learner, pool, 2, random_state=0)
    assert idx[0] in (0, 1) and idx[1] == 2
    # bit A and bit B are independent 1-bit labels: BALD log 2, then the pair 2 log 2
    assert_allclose(values[0], np.log(2))
    assert values[1] > values[0]


def test_batch_bald_sampled_mode_runs(learner, pool):
    idx, _ = batch_bald(learner, pool, 6, max_configurations=20, random_state=0)
    assert len(set(idx)) == 6
    np.testing.assert_array_equal(
        idx, batch_bald(learner, pool, 6, max_configurations=20, random_state=0)[0]
    )


def test_power_probabilities():
    assert_allclose(power_probabilities([1.0, 3.0, 0.0]), [0.25, 0.75, 0.0])
    assert_allclose(power_probabilities([1.0, 3.0], beta=2), [0.1, 0.9])
    assert_allclose(power_probabilities([1.0, 3.0], beta=0), [0.5, 0.5])
    assert_allclose(power_probabilities([0.0, 0.0]), [0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        power_probabilities([-1.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        power_probabilities([1.0], beta=-1)


def test_power_sampling_is_proportional_and_without_replacement():
    scores = np.array([1.0, 2.0, 5.0, 0.0])
    rng = np.random.default_rng(0)
    first = np.array([power_sample(scores, 1, 1.0, rng)[0] for _ in range(4000)])
    assert_allclose(np.bincount(first, minlength=4) / 4000, [0.125, 0.25, 0.625, 0], atol=0.03)
    batches = [power_sample(scores, 4, 1.0, rng) for _ in range(20)]
    assert all(sorted(b) == [0, 1, 2, 3] and b[-1] == 3 for b in batches)


def test_power_bald_seeded_and_stochastic(learner, pool):
    runs = [tuple(power_bald(learner, pool, 5, random_state=s)[0]) for s in range(4)]
    assert len(set(runs)) > 1
    assert runs[0] == tuple(power_bald(learner, pool, 5, random_state=0)[0])
    top, scores = power_bald(learner, pool, 5, beta=1e4, random_state=0)  # ~ top-5 BALD
    assert set(top) == set(bald(learner, pool, 5, random_state=0)[0])
    assert_allclose(scores, bald_scores(learner.estimator.table)[top])


def test_coreset_scores_and_k_center():
    points = np.array([[0.0], [1.0], [2.0], [10.0]])
    assert_allclose(coreset_scores(points, [[0.0]]), [0, 1, 2, 10])
    assert np.isinf(coreset_scores(points, None)).all()
    np.testing.assert_array_equal(k_center_greedy(points, 2, centers=[[0.0]]), [3, 2])
    first = {k_center_greedy(points, 1, random_state=s)[0] for s in range(10)}
    assert len(first) > 1  # no centers: a random start


def test_coreset_uses_labeled_set_as_centers(learner, pool):
    learner.X_training = pool[:35]
    assert set(coreset(learner, pool, 5, random_state=0)[0]) == {35, 36, 37, 38, 39}


def test_coreset_prefers_the_grown_labeled_set_of_skal_cxr_learners(learner, pool):
    learner.X_training = pool[:1]  # skal_cxr's learner: the initial set, never grown
    learner.X_training_ = pool[:35]  # its labeled set
    assert set(coreset(learner, pool, 5, random_state=0)[0]) == {35, 36, 37, 38, 39}


def test_coreset_on_transformed(learner, pool):
    learner.on_transformed = True
    learner.transform_without_estimating = lambda X: np.asarray(X)[:, :1, :1]
    learner.X_training = pool[:1]  # value 0: the farthest image is the largest
    (first, second), distances = coreset(learner, pool, 2, random_state=0)
    assert first == 39 and second in (19, 20)  # 19 and 20 tie at distance 19
    assert_allclose(distances, [39, 19])


def test_class_quotas():
    predicted = [0] * 8 + [1] * 2
    np.testing.assert_array_equal(class_quotas(predicted, 4), [2, 2])
    np.testing.assert_array_equal(class_quotas(predicted, 3), [1, 2])  # rarest first
    np.testing.assert_array_equal(class_quotas(predicted, 5), [3, 2])  # class 1 exhausted
    np.testing.assert_array_equal(class_quotas(predicted, 2, n_classes=3), [1, 1, 0])


@pytest.mark.parametrize("inner", [bald, random_sampling, batch_bald])
def test_class_balanced_spreads_batch(inner, learner, table, pool):
    predicted = table.mean(axis=0).argmax(axis=1)
    idx, _ = class_balanced(inner)(learner, pool, 6, random_state=0)
    counts = np.bincount(predicted[idx], minlength=3)
    np.testing.assert_array_equal(counts, class_quotas(predicted, 6, 3))
    assert len(set(idx)) == 6


def test_class_balanced_picks_top_within_class(learner, table, pool):
    predicted = table.mean(axis=0).argmax(axis=1)
    scores = bald_scores(table)
    idx, returned = class_balanced(bald)(learner, pool, 6, random_state=0)
    assert_allclose(returned, scores[idx])
    for c in range(3):
        mine = idx[predicted[idx] == c]
        best_in_class = np.sort(scores[predicted == c])[::-1][: len(mine)]
        assert_allclose(np.sort(scores[mine])[::-1], best_in_class)


def test_class_balanced_wraps_plain_modal_strategies(learner, table, pool):
    def first_images(learner, X_pool, n_instances=1):
        return np.arange(n_instances)

    predicted = table.mean(axis=0).argmax(axis=1)
    idx, scores = class_balanced(first_images)(learner, pool, 6, random_state=0)
    assert np.isnan(scores).all()  # bare indices: no scores
    for c in range(3):
        mine = np.sort(idx[predicted[idx] == c])
        np.testing.assert_array_equal(mine, np.flatnonzero(predicted == c)[: len(mine)])

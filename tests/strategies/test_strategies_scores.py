"""Known-answer tests of the pure scoring functions, and of the strategies using them."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skal_cxr.strategies import (
    bald,
    bald_scores,
    entropy_scores,
    least_confident,
    least_confident_scores,
    margin_sampling,
    margin_scores,
    max_entropy,
    mean_std,
    mean_std_scores,
    random_scores,
    variation_ratio_scores,
    variation_ratios,
)

# Two MC samples, two images, three classes. Image 0: the samples disagree
# (mean [0.4, 0.6, 0]); image 1: both samples uniform.
SAMPLES = np.array(
    [
        [[0.2, 0.8, 0.0], [1 / 3, 1 / 3, 1 / 3]],
        [[0.6, 0.4, 0.0], [1 / 3, 1 / 3, 1 / 3]],
    ]
)


def H(*p):
    return -sum(q * np.log(q) for q in p if q > 0)


def test_entropy():
    expected = [H(0.4, 0.6), np.log(3)]
    assert_allclose(entropy_scores(SAMPLES), expected)
    assert_allclose(entropy_scores(SAMPLES.mean(axis=0)), expected)


def test_bald():
    expected_0 = H(0.4, 0.6) - (H(0.2, 0.8) + H(0.6, 0.4)) / 2
    assert_allclose(bald_scores(SAMPLES), [expected_0, 0.0], atol=1e-12)
    assert expected_0 == pytest.approx(0.0863046, abs=1e-6)


def test_mean_std():
    # per-class population std over the two samples: 0.2, 0.2, 0
    assert_allclose(mean_std_scores(SAMPLES), [0.4 / 3, 0.0], atol=1e-12)


def test_variation_ratios():
    assert_allclose(variation_ratio_scores(SAMPLES), [0.5, 0.0])
    three = np.array([[[0.9, 0.1]], [[0.8, 0.2]], [[0.3, 0.7]]])
    assert_allclose(variation_ratio_scores(three), [1 - 2 / 3])


def test_margin_and_least_confident():
    assert_allclose(margin_scores(SAMPLES), [1 - (0.6 - 0.4), 1.0])
    assert_allclose(least_confident_scores(SAMPLES), [1 - 0.6, 2 / 3])


def test_scores_are_zero_when_certain():
    certain = np.array([[[1.0, 0.0]], [[1.0, 0.0]]])
    for score in (
        entropy_scores,
        bald_scores,
        mean_std_scores,
        variation_ratio_scores,
        least_confident_scores,
    ):
        assert_allclose(score(certain), [0.0])
    assert_allclose(margin_scores(certain), [0.0])


@pytest.mark.parametrize("score", [bald_scores, mean_std_scores, variation_ratio_scores])
def test_sample_scores_need_3d(score):
    with pytest.raises(ValueError, match="n_mc_samples, n_images, n_classes"):
        score(SAMPLES[0])


def test_random_scores_seeded():
    assert_allclose(random_scores(5, random_state=0), random_scores(5, random_state=0))
    assert random_scores(5).shape == (5,)
    # the images themselves (only their number counts), as make_strategy passes them
    assert_allclose(
        random_scores(np.zeros((5, 4, 4)), random_state=0), random_scores(5, random_state=0)
    )


@pytest.mark.parametrize(
    "strategy, score, mc",
    [
        (max_entropy, entropy_scores, False),
        (margin_sampling, margin_scores, False),
        (least_confident, least_confident_scores, False),
        (mean_std, mean_std_scores, True),
        (variation_ratios, variation_ratio_scores, True),
        (bald, bald_scores, True),
    ],
)
def test_strategy_queries_top_scores(strategy, score, mc, learner, table, pool):
    scores = score(table) if mc else score(table.mean(axis=0))
    idx, returned = strategy(learner, pool, n_instances=5, random_state=0)
    assert_allclose(scores[idx], np.sort(scores)[::-1][:5])
    assert_allclose(returned, scores[idx])


def test_subsampled_query_is_top_of_the_subsample(learner, table, pool):
    order = np.random.default_rng(2).permutation(len(pool))
    idx, _ = bald(learner, pool[order], n_instances=3, pool_size=15, random_state=0)
    seen = learner.estimator.seen_ids_
    scores = bald_scores(table)
    assert_allclose(scores[order[idx]], np.sort(scores[seen])[::-1][:3])

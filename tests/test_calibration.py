"""Known answers of the prior and temperature corrections (skal_cxr.calibration)."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import NotFittedError

from skal_cxr.calibration import EMPriorCorrection, PriorCorrection, prior_shift
from skal_cxr.metrics import expected_calibration_error


def _draw(rng, probas):
    """One class code per row, drawn from that row's probabilities."""
    return (rng.random((len(probas), 1)) > np.cumsum(probas, axis=1)).sum(axis=1)


def test_prior_shift_by_hand():
    # p = (0.6, 0.4) under a balanced (uniform) training prior; population 3:1
    # -> (0.6 * 1.5, 0.4 * 0.5) / 1.1 = (0.818..., 0.181...)
    out = prior_shift([[0.6, 0.4]], [0.5, 0.5], [0.75, 0.25])
    np.testing.assert_allclose(out, [[0.9 / 1.1, 0.2 / 1.1]])
    # unnormalised priors are normalised; equal priors change nothing
    np.testing.assert_allclose(prior_shift([[0.6, 0.4]], [2, 2], [3, 3]), [[0.6, 0.4]])
    with pytest.raises(ValueError, match="target_prior must hold 2"):
        prior_shift([[0.6, 0.4]], [0.5, 0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match="probabilities"):
        prior_shift([[0.6, 0.6]], [0.5, 0.5], [0.5, 0.5])


def test_prior_correction_recovers_a_known_prior_shift():
    # true posteriors q; the classifier reports them under a shifted prior with
    # log-ratio (0, -1.2, 0.7): the fitted bias must undo exactly that shift
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20000, 3))
    q = softmax(logits, axis=1)
    y = _draw(rng, q)
    shift = np.array([0.0, -1.2, 0.7])
    reported = softmax(logits + shift, axis=1)
    fitted = PriorCorrection(method="both").fit(reported, y)
    np.testing.assert_allclose(fitted.bias_, -shift, atol=0.06)
    assert fitted.temperature_ == pytest.approx(1.0, abs=0.03)
    assert fitted.nll_after_ < fitted.nll_before_
    assert expected_calibration_error(
        y, fitted.transform(reported)
    ) < 0.5 * expected_calibration_error(y, reported)


def test_prior_correction_of_an_uninformed_classifier_is_the_class_frequency():
    probas = np.full((10, 2), 0.5)
    y = np.array([0] * 9 + [1])
    fitted = PriorCorrection(method="prior").fit(probas, y)
    np.testing.assert_allclose(fitted.transform(probas), np.tile([0.9, 0.1], (10, 1)), atol=1e-5)
    assert fitted.temperature_ == 1.0


def test_temperature_only_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, (20000, 2))
    y = _draw(rng, softmax(logits, axis=1))
    overconfident = softmax(3.0 * logits, axis=1)  # temperature 1/3
    fitted = PriorCorrection(method="temperature").fit(overconfident, y)
    assert fitted.temperature_ == pytest.approx(3.0, rel=0.05)
    np.testing.assert_array_equal(fitted.bias_, [0.0, 0.0])


def test_prior_correction_errors():
    with pytest.raises(NotFittedError):
        PriorCorrection().transform([[0.5, 0.5]])
    with pytest.raises(ValueError, match="method"):
        PriorCorrection(method="platt").fit([[0.5, 0.5]], [0])
    with pytest.raises(ValueError, match="class codes"):
        PriorCorrection().fit([[0.5, 0.5]], [2])
    fitted = PriorCorrection().fit([[0.5, 0.5], [0.2, 0.8]], [0, 1])
    with pytest.raises(ValueError, match="fitted on 2"):
        fitted.transform([[0.2, 0.3, 0.5]])


def _gaussian_posteriors(prior, n, seed):
    """Bayes posteriors at a uniform training prior of x ~ N(-1, 1) | 0, N(1, 1) | 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior[1]).astype(int)
    x = rng.normal(2.0 * y - 1.0, 1.0)
    p1 = 1.0 / (1.0 + np.exp(-2.0 * x))
    return np.column_stack([1 - p1, p1]), y


def test_em_prior_of_a_perfect_classifier_is_the_class_frequency():
    probas = np.eye(3)[[0, 0, 0, 1, 2, 2, 0, 1]]
    em = EMPriorCorrection().fit(probas)
    np.testing.assert_allclose(em.prior_, [4 / 8, 2 / 8, 2 / 8], atol=1e-9)
    np.testing.assert_allclose(em.transform(probas), probas, atol=1e-9)


def test_em_prior_recovers_the_prior_of_an_unlabeled_set():
    for true in ([0.8, 0.2], [0.5, 0.5], [0.1, 0.9]):
        probas, y = _gaussian_posteriors(true, 50_000, seed=0)
        em = EMPriorCorrection().fit(probas)
        np.testing.assert_allclose(em.prior_, true, atol=0.015)
        assert em.n_iter_ < em.max_iter
        # the naive estimate (mean posterior) is pulled towards the training prior
        if true[0] != 0.5:
            assert abs(em.prior_[0] - true[0]) < abs(probas.mean(axis=0)[0] - true[0])
    # the corrected probabilities are the Bayes posteriors under the true prior
    probas, y = _gaussian_posteriors([0.8, 0.2], 50_000, seed=1)
    em = EMPriorCorrection().fit(probas)
    np.testing.assert_allclose(
        em.transform(probas[:5]), prior_shift(probas[:5], [0.5, 0.5], [0.8, 0.2]), atol=0.01
    )
    assert expected_calibration_error(y, em.transform(probas)) < expected_calibration_error(
        y, probas
    )


def test_em_prior_with_a_training_prior_and_errors():
    probas, _ = _gaussian_posteriors([0.5, 0.5], 20_000, seed=2)
    trained_at = prior_shift(probas, [0.5, 0.5], [0.2, 0.8])  # a classifier trained at 0.2/0.8
    em = EMPriorCorrection(train_prior=[0.2, 0.8]).fit(trained_at)
    np.testing.assert_allclose(em.prior_, [0.5, 0.5], atol=0.02)
    with pytest.raises(NotFittedError):
        EMPriorCorrection().transform(probas)
    with pytest.raises(ValueError, match="3 classes"):
        em.transform(np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="train_prior"):
        EMPriorCorrection(train_prior=[1.0, 0.0]).fit(probas)

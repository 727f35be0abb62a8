"""Known answers of the prior and temperature corrections (skal_cxr.calibration)."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.exceptions import NotFittedError

from skal_cxr.calibration import PriorCorrection, prior_shift
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

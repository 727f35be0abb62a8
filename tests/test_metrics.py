"""Known-answer tests of skal_cxr.metrics on made-up probabilities."""

import numpy as np
import pytest
from imblearn.metrics import macro_averaged_mean_absolute_error
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from skal_cxr.metrics import (
    classification_metrics,
    expected_calibration_error,
    fit_operating_point,
    predict_at_operating_point,
)


def test_ece_known_answer():
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.25, 0.75], [0.25, 0.75]])
    # bin (0.8, 0.9]: acc 1/2, conf 0.9; bin (0.7, 0.8]: acc 1, conf 0.75
    assert expected_calibration_error([0, 1, 1, 1], proba) == pytest.approx(0.5 * 0.4 + 0.5 * 0.25)


def test_ece_perfectly_calibrated_and_one_bin():
    proba = np.tile([0.5, 0.5], (4, 1))
    assert expected_calibration_error([0, 0, 1, 1], proba) == pytest.approx(0.0)
    assert expected_calibration_error([0, 0, 0, 0], proba, n_bins=1) == pytest.approx(0.5)


def test_binary_operating_point_is_youden_threshold():
    # class 1 scores are all low: argmax calls everything 0; a threshold at
    # 0.25 separates perfectly.
    p1 = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.45])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    proba = np.column_stack([1 - p1, p1])
    w = fit_operating_point(y, proba)
    assert w[0] == 1.0
    assert 0.2 < 1 / (1 + w[1]) < 0.3  # the threshold t = 1 / (1 + w1)
    assert balanced_accuracy_score(y, predict_at_operating_point(proba, w)) == 1.0
    assert balanced_accuracy_score(y, proba.argmax(1)) == 0.5


def test_multiclass_operating_point_improves_balanced_accuracy():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [60, 30, 10])
    logits = rng.normal(size=(100, 3)) + 1.5 * np.eye(3)[y]
    logits[:, 0] += 2.0  # a model biased towards the majority class
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    w = fit_operating_point(y, proba)
    assert w.shape == (3,) and w[0] == 1.0 and np.all(w > 0)
    before = balanced_accuracy_score(y, proba.argmax(1))
    after = balanced_accuracy_score(y, predict_at_operating_point(proba, w))
    assert after > before


def test_operating_point_one_class_is_identity():
    proba = np.array([[0.6, 0.4], [0.3, 0.7]])
    np.testing.assert_array_equal(fit_operating_point([1, 1], proba), [1.0, 1.0])


def test_classification_metrics_match_sklearn_and_imblearn():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [20, 15, 5])
    proba = rng.dirichlet(np.ones(3), size=40)
    proba[np.arange(40), y] += 0.5
    proba /= proba.sum(1, keepdims=True)
    m = classification_metrics(
        y, proba, class_names=["normal", "moderate", "severe"], operating_point=[1.0, 2.0, 3.0]
    )
    assert m["auroc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
    pred = proba.argmax(1)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["mae_macro"] == pytest.approx(macro_averaged_mean_absolute_error(y, pred))
    assert m["recall_severe"] == pytest.approx(np.mean(pred[y == 2] == 2))
    pred_op = (proba * [1.0, 2.0, 3.0]).argmax(1)
    assert m["balanced_accuracy_op"] == pytest.approx(balanced_accuracy_score(y, pred_op))
    assert set(m) >= {"auprc", "ece", "accuracy_op", "recall_normal_op", "mae_macro_op"}


def test_metrics_with_a_missing_test_class_and_errors():
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    m = classification_metrics([0, 1, 0], proba)
    assert m["auroc"] == pytest.approx(1.0)  # one-vs-rest over present classes
    assert np.isnan(classification_metrics([0, 0, 0], proba)["auroc"])
    with pytest.raises(ValueError, match="codes"):
        classification_metrics([0, 3, 0], proba)
    with pytest.raises(ValueError, match="class_names"):
        classification_metrics([0, 1, 0], proba, class_names=["a", "b"])

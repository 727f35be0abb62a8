"""Evaluation metrics of an active-learning round.

Everything here is a pure function of labels and predicted probabilities, so
it is testable without a model. Labels are integer codes ``0 .. n_classes - 1``
(the column order of the probabilities); for ordinal problems such as
normal / moderate / severe the codes follow the severity order.

Two kinds of metric are computed:

* threshold-free: macro AUROC (one-vs-rest), macro AUPRC, expected
  calibration error;
* threshold-dependent: accuracy, balanced accuracy, per-class recall and the
  macro-averaged mean absolute error of ordinal predictions. These are given
  at the default ``argmax`` decision and, when an operating point was chosen
  on a validation split (:func:`fit_operating_point`), at that operating
  point too (keys ending in ``_op``).
"""

import warnings

import numpy as np
from imblearn.metrics import macro_averaged_mean_absolute_error
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    recall_score,
    roc_auc_score,
)

__all__ = [
    "expected_calibration_error",
    "fit_operating_point",
    "predict_at_operating_point",
    "classification_metrics",
    "THRESHOLD_METRICS",
]

#: Metrics that depend on the decision rule; reported at argmax and at ``_op``.
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "mae_macro")

# Grid of log class weights searched for multiclass operating points.
_LOG_WEIGHT_GRID = np.linspace(-3.0, 3.0, 61)


def _check_proba(y_true, proba):
    y_true = np.asarray(y_true).astype(np.int64, copy=False)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must have shape (n_images, n_classes >= 2); got {proba.shape}.")
    if y_true.shape != (proba.shape[0],):
        raise ValueError(
            f"y_true has shape {y_true.shape}; expected ({proba.shape[0]},) to match proba."
        )
    if y_true.size and (y_true.min() < 0 or y_true.max() >= proba.shape[1]):
        raise ValueError(f"y_true must hold codes 0 .. {proba.shape[1] - 1}.")
    return y_true, proba


def expected_calibration_error(y_true, proba, *, n_bins=10):
    """Expected calibration error of the top-class confidence.

    The confidence ``max_c p_c`` of each image is put in one of ``n_bins``
    equal-width bins ``(0, 1/n_bins], ..., ((n_bins-1)/n_bins, 1]`` and

    .. math:: \\mathrm{ECE} = \\sum_b \\frac{n_b}{N}\\,|\\mathrm{acc}_b - \\mathrm{conf}_b|

    where ``acc_b`` is the accuracy of the argmax prediction and ``conf_b``
    the mean confidence in bin ``b`` (Guo et al., 2017). Empty bins add 0.

    Parameters
    ----------
    y_true : array-like of shape (n_images,)
        Integer class codes.
    proba : array-like of shape (n_images, n_classes)
        Predicted probabilities.
    n_bins : int, default=10

    Returns
    -------
    ece : float
        In ``[0, 1]``; 0 is perfectly calibrated.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
    >>> round(expected_calibration_error([0, 1, 1, 1], proba), 3)
    0.35
    """
    y_true, proba = _check_proba(y_true, proba)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    # bin b holds confidences in (b/n_bins, (b+1)/n_bins]; 0 goes to bin 0.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def predict_at_operating_point(proba, weights):
    """Decisions ``argmax_c w_c p_c`` at an operating point.

    Parameters
    ----------
    proba : array-like of shape (n_images, n_classes)
    weights : array-like of shape (n_classes,)
        Positive class weights from :func:`fit_operating_point`; all ones
        gives the default argmax.

    Returns
    -------
    y_pred : ndarray of shape (n_images,), dtype int64
    """
    proba = np.asarray(proba, dtype=np.float64)
    return (proba * np.asarray(weights, dtype=np.float64)).argmax(axis=1).astype(np.int64)


def _fast_balanced_accuracy(y_true, y_pred, n_classes):
    """Balanced accuracy over the classes present in ``y_true`` (as scikit-learn's)."""
    support = np.bincount(y_true, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def fit_operating_point(y_true, proba):
    """Class weights maximising balanced accuracy on a validation split.

    The decision at the operating point is ``argmax_c w_c p_c`` with
    ``w_0 = 1``. It corrects the shift between the class prior the model
    learned from its (small, imbalanced) labeled set and the one of the
    data it is applied to.

    * Two classes: ``w_1 = (1 - t) / t`` for the threshold ``t`` on
      ``p_1`` that maximises Youden's J statistic (equivalently balanced
      accuracy) on the validation data, searched exactly over the midpoints
      between sorted validation probabilities. Ties go to the threshold
      closest to 0.5.
    * More classes: coordinate ascent on ``log w_c`` (classes 1 .. C-1,
      three sweeps over a grid of 61 values in ``[-3, 3]``) maximising
      balanced accuracy; ties keep the weight closest to 1.

    Never fit it on the test split.

    Parameters
    ----------
    y_true : array-like of shape (n_images,)
        Integer class codes of the validation images.
    proba : array-like of shape (n_images, n_classes)
        The model's probabilities for them.

    Returns
    -------
    weights : ndarray of shape (n_classes,)
        Positive weights, ``weights[0] == 1``. All ones when the validation
        data hold fewer than two classes.
    """
    y_true, proba = _check_proba(y_true, proba)
    n_classes = proba.shape[1]
    weights = np.ones(n_classes)
    if len(np.unique(y_true)) < 2:
        return weights
    if n_classes == 2:
        p1 = np.clip(proba[:, 1] / proba.sum(axis=1), 1e-12, 1 - 1e-12)
        values = np.unique(p1)
        candidates = np.concatenate(
            [[values[0] / 2], (values[:-1] + values[1:]) / 2, [(values[-1] + 1) / 2]]
        )
        scores = np.array(
            [_fast_balanced_accuracy(y_true, (p1 > t).astype(np.int64), 2) for t in candidates]
        )
        best = np.flatnonzero(np.isclose(scores, scores.max()))
        t = candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]]
        weights[1] = (1 - t) / t
        return weights
    log_w = np.zeros(n_classes)

    def score(lw):
        y_pred = predict_at_operating_point(proba, np.exp(lw))
        return _fast_balanced_accuracy(y_true, y_pred, n_classes)

    for _ in range(3):
        for c in range(1, n_classes):
            trial = log_w.copy()
            scores = []
            for value in _LOG_WEIGHT_GRID:
                trial[c] = value
                scores.append(score(trial))
            scores = np.asarray(scores)
            best = np.flatnonzero(np.isclose(scores, scores.max()))
            log_w[c] = _LOG_WEIGHT_GRID[best[np.argmin(np.abs(_LOG_WEIGHT_GRID[best]))]]
    return np.exp(log_w)


def _auroc(y_true, proba, n_classes):
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    if len(present) < n_classes:  # one-vs-rest over the classes present
        return float(np.mean([roc_auc_score(y_true == c, proba[:, c]) for c in present]))
    p = proba / proba.sum(axis=1, keepdims=True)
    return float(roc_auc_score(y_true, p, multi_class="ovr", average="macro"))


def _auprc(y_true, proba, n_classes):
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([average_precision_score(y_true == c, proba[:, c]) for c in present]))


def _macro_mae(y_true, y_pred):
    """imbalanced-learn's macro-averaged MAE, over the classes present in ``y_true``.

    imbalanced-learn averages over every label of ``y_true`` and ``y_pred``
    and fails on a predicted class absent from ``y_true``; its definition is
    applied to the classes present then.
    """
    present = np.unique(y_true)
    if np.isin(y_pred, present).all():
        return float(macro_averaged_mean_absolute_error(y_true, y_pred))
    return float(np.mean([np.abs(y_pred[y_true == c] - c).mean() for c in present]))


def _decision_metrics(y_true, y_pred, n_classes, suffix, class_names):
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    out = {
        "accuracy" + suffix: float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy" + suffix: float(balanced),
        "mae_macro" + suffix: _macro_mae(y_true, y_pred),
    }
    recall = recall_score(
        y_true, y_pred, labels=np.arange(n_classes), average=None, zero_division=0
    )
    for name, r in zip(class_names, recall):
        out[f"recall_{name}{suffix}"] = float(r)
    return out


def classification_metrics(y_true, proba, *, class_names=None, operating_point=None, n_bins=10):
    """All metrics of one evaluation, as a flat dict of floats.

    Parameters
    ----------
    y_true : array-like of shape (n_images,)
        Integer class codes, in the column order of ``proba``.
    proba : array-like of shape (n_images, n_classes)
        Predicted probabilities.
    class_names : sequence of str, default=None
        Names used in the per-class recall keys (``recall_<name>``); the
        codes by default.
    operating_point : array-like of shape (n_classes,), default=None
        Class weights from :func:`fit_operating_point` (fitted on a
        validation split). When given, every threshold-dependent metric is
        also reported at it, under the same key with ``_op`` appended.
    n_bins : int, default=10
        Bins of the expected calibration error.

    Returns
    -------
    metrics : dict of str to float
        ``auroc`` (macro one-vs-rest; for two classes the AUROC of class 1),
        ``auprc`` (macro average precision, one-vs-rest over every class,
        both for two classes), ``ece``, ``accuracy``, ``balanced_accuracy``,
        ``mae_macro`` (macro-averaged mean absolute error between codes,
        meaningful for ordinal classes), ``recall_<name>`` per class, and the
        ``_op`` variants. Metrics needing two classes in ``y_true`` are NaN
        otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.metrics import classification_metrics
    >>> proba = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    >>> m = classification_metrics([0, 1, 1, 0], proba, class_names=["normal", "diseased"])
    >>> m["auroc"], m["accuracy"], m["recall_diseased"]
    (0.75, 0.5, 0.5)
    """
    y_true, proba = _check_proba(y_true, proba)
    n_classes = proba.shape[1]
    if class_names is None:
        class_names = [str(c) for c in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"class_names has {len(class_names)} names for {n_classes} classes.")
    out = {
        "auroc": _auroc(y_true, proba, n_classes),
        "auprc": _auprc(y_true, proba, n_classes),
        "ece": expected_calibration_error(y_true, proba, n_bins=n_bins),
    }
    out.update(_decision_metrics(y_true, proba.argmax(axis=1), n_classes, "", class_names))
    if operating_point is not None:
        y_op = predict_at_operating_point(proba, operating_point)
        out.update(_decision_metrics(y_true, y_op, n_classes, "_op", class_names))
    return out

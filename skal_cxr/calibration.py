"""Probabilities a user can trust whichever strategy picked the labels.

Active learning changes the class mix of the labeled set: uncertainty
sampling over-samples the classes near the decision boundary, and a
class-weighted loss (``class_weight="balanced"``) trains as if every class
were equally frequent. Either way the network's probabilities carry the
*training* prior, not the population's, and their confidence is off. Both
are corrected on the validation split, which is labeled independently of the
acquisition:

* :func:`prior_shift` moves probabilities from one class prior to another
  by Bayes' rule (Saerens, Latinne & Decaestecker, 2002);
* :class:`PriorCorrection` fits a temperature and a per-class log-prior
  shift to the validation split by maximum likelihood ("bias-corrected
  temperature scaling", Alexandari, Kundaje & Shrikumar, 2020, arXiv
  1901.06852), which contains the Bayes prior correction (temperature 1,
  shift ``log(target / train)``) and temperature scaling (no shift);
* :class:`EMPriorCorrection` needs no label at all: it re-estimates the
  class prior of the unlabeled pool by EM (Saerens et al., 2002) and moves
  the probabilities to it.
"""

import numbers

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._validation import Interval, StrOptions, check_params

__all__ = ["prior_shift", "PriorCorrection", "EMPriorCorrection"]

_TINY = 1e-12


def _check_probas(probas, name="probas"):
    probas = np.asarray(probas, dtype=np.float64)
    if probas.ndim != 2 or probas.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n_images, n_classes >= 2); got {probas.shape}.")
    if (probas < 0).any() or not np.allclose(probas.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{name} must hold probabilities: non-negative rows summing to 1.")
    return probas


def _check_prior(prior, n_classes, name):
    prior = np.asarray(prior, dtype=np.float64).ravel()
    if prior.shape != (n_classes,) or (prior <= 0).any():
        raise ValueError(f"{name} must hold {n_classes} positive class frequencies; got {prior}.")
    return prior / prior.sum()


def _check_fitted_probas(correction, probas):
    """``probas`` checked, with as many classes as ``correction`` was fitted on."""
    probas = _check_probas(probas)
    if probas.shape[1] != correction.n_classes_:
        raise ValueError(
            f"probas has {probas.shape[1]} classes; {type(correction).__name__} was fitted "
            f"on {correction.n_classes_}."
        )
    return probas


def prior_shift(probas, train_prior, target_prior):
    """Probabilities under another class prior (Bayes' rule).

    ``p'(c | x) = p(c | x) w_c / sum_k p(k | x) w_k`` with ``w_c =
    target_prior_c / train_prior_c``: what the classifier would say had it
    been trained with the target class frequencies.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes)
        Probabilities of a classifier trained under ``train_prior``.
    train_prior : array-like of shape (n_classes,)
        The class frequencies the classifier was trained with (the labeled
        set's; uniform under a ``"balanced"`` class-weighted loss).
    target_prior : array-like of shape (n_classes,)
        The class frequencies of the population (for instance the
        validation split's).

    Returns
    -------
    probas : ndarray of shape (n_images, n_classes)
        Rows sum to 1.

    Examples
    --------
    >>> from skal_cxr.calibration import prior_shift
    >>> prior_shift([[0.5, 0.5]], train_prior=[0.5, 0.5], target_prior=[0.9, 0.1])
    array([[0.9, 0.1]])
    """
    probas = _check_probas(probas)
    n_classes = probas.shape[1]
    weights = _check_prior(target_prior, n_classes, "target_prior") / _check_prior(
        train_prior, n_classes, "train_prior"
    )
    shifted = probas * weights
    return shifted / shifted.sum(axis=1, keepdims=True)


class PriorCorrection(BaseEstimator):
    """Temperature and class-prior correction of probabilities, fitted on validation labels.

    Calibrated probabilities are ``softmax(log(p) / T + b)``: a temperature
    ``T`` and one log-prior shift ``b_c`` per class (``b_0 = 0``), chosen by
    maximum likelihood on a labeled split that the acquisition did not pick
    (the validation split). ``method="prior"`` fits ``b`` only (``T = 1``,
    the Bayes prior correction), ``"temperature"`` fits ``T`` only.

    Parameters
    ----------
    method : {"both", "prior", "temperature"}, default="both"
        Which corrections to fit.
    max_temperature : float, default=100.0
        Upper bound of ``T`` (a near-constant classifier would drive it up
        without bound).

    Attributes
    ----------
    temperature_ : float
        ``T``.
    bias_ : ndarray of shape (n_classes,)
        ``b``, with ``b_0 = 0``.
    n_classes_ : int
        Number of classes (columns of the probabilities).
    nll_before_, nll_after_ : float
        Mean negative log-likelihood of the fitting labels before and after.

    See Also
    --------
    prior_shift : The correction with known priors.
    skal_cxr.metrics.expected_calibration_error : How far confidence is from accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.calibration import PriorCorrection
    >>> probas = np.full((10, 2), 0.5)          # an uninformed classifier
    >>> y = np.array([0] * 9 + [1])             # 90 % of class 0 in validation
    >>> PriorCorrection(method="prior").fit(probas, y).transform(probas[:1]).round(3)
    array([[0.9, 0.1]])
    """

    _parameter_constraints = {
        "method": [StrOptions({"both", "prior", "temperature"})],
        "max_temperature": [Interval(numbers.Real, 1.0, None, closed="left")],
    }

    def __init__(self, method="both", max_temperature=100.0):
        self.method = method
        self.max_temperature = max_temperature

    def fit(self, probas, y):
        """Fit ``T`` and ``b`` to the labels ``y`` of the images scored ``probas``.

        Parameters
        ----------
        probas : array-like of shape (n_images, n_classes)
            The classifier's probabilities on the validation images.
        y : array-like of shape (n_images,)
            Their class codes ``0 .. n_classes - 1`` (column order of ``probas``).

        Returns
        -------
        self : PriorCorrection
            Fitted.
        """
        check_params(self)
        probas = _check_probas(probas)
        y = column_or_1d(y).astype(np.intp)
        n, k = probas.shape
        if len(y) != n:
            raise ValueError(f"probas and y have different lengths: {n} and {len(y)}.")
        if y.min() < 0 or y.max() >= k:
            raise ValueError(f"y must hold class codes 0 .. {k - 1}; got {np.unique(y)}.")
        logp = np.log(np.clip(probas, _TINY, 1.0))
        fit_t = self.method in ("both", "temperature")
        fit_b = self.method in ("both", "prior")

        def unpack(theta):
            inv_t = np.exp(theta[0]) if fit_t else 1.0
            bias = np.r_[0.0, theta[1:]] if fit_b else np.zeros(k)
            return inv_t, bias

        def nll(theta):
            inv_t, bias = unpack(theta)
            return -log_softmax(logp * inv_t + bias, axis=1)[np.arange(n), y].mean()

        theta0 = np.zeros(1 + (k - 1 if fit_b else 0))
        bounds = [(-np.log(self.max_temperature), np.log(self.max_temperature))]
        bounds += [(-30.0, 30.0)] * (k - 1 if fit_b else 0)
        result = minimize(nll, theta0, method="L-BFGS-B", bounds=bounds)
        inv_t, bias = unpack(result.x)
        self.temperature_ = float(1.0 / inv_t)
        self.bias_ = bias
        self.n_classes_ = k
        self.nll_before_ = float(nll(np.zeros_like(theta0)))
        self.nll_after_ = float(result.fun)
        return self

    def transform(self, probas):
        """Corrected probabilities.

        Parameters
        ----------
        probas : array-like of shape (n_images, n_classes)
            The classifier's probabilities.

        Returns
        -------
        probas : ndarray of shape (n_images, n_classes)
            ``softmax(log(probas) / temperature_ + bias_)``.
        """
        check_is_fitted(self, "bias_")
        probas = _check_fitted_probas(self, probas)
        logp = np.log(np.clip(probas, _TINY, 1.0))
        return np.exp(log_softmax(logp / self.temperature_ + self.bias_, axis=1))


class EMPriorCorrection(BaseEstimator):
    """The class prior of an unlabeled set, re-estimated by EM, and probabilities under it.

    Saerens, Latinne & Decaestecker (2002): starting from the training
    prior, alternate (E) the probabilities of the unlabeled images under the
    current prior estimate (:func:`prior_shift`) and (M) the new estimate,
    their mean, until the estimate moves less than ``tol``. It needs no
    label: fit it on the unlabeled pool, never on the test set, and
    :meth:`transform` any probabilities of the same classifier.

    Parameters
    ----------
    train_prior : array-like of shape (n_classes,) or None, default=None
        The class frequencies the classifier was trained with; ``None``:
        uniform (a ``"balanced"`` class-weighted loss).
    max_iter : int, default=1000
        Most EM iterations.
    tol : float, default=1e-6
        Stop when no class frequency moves more than this.

    Attributes
    ----------
    prior_ : ndarray of shape (n_classes,)
        The estimated class frequencies of the unlabeled set.
    train_prior_ : ndarray of shape (n_classes,)
        The training prior used.
    n_iter_ : int
        Iterations run.
    n_classes_ : int
        Number of classes.

    See Also
    --------
    prior_shift : The correction with known priors.
    PriorCorrection : Temperature and prior fitted on labeled validation images.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.calibration import EMPriorCorrection
    >>> probas = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> em = EMPriorCorrection().fit(probas)
    >>> bool(em.prior_[0] > 2 / 3)      # sharper than the mean of the probabilities
    True
    """

    _parameter_constraints = {
        "train_prior": ["array-like", None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0.0, None, closed="neither")],
    }

    def __init__(self, train_prior=None, max_iter=1000, tol=1e-6):
        self.train_prior = train_prior
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, probas, y=None):
        """Estimate the class prior of the images scored ``probas``.

        Parameters
        ----------
        probas : array-like of shape (n_images, n_classes)
            The classifier's probabilities on unlabeled images.
        y : None
            Ignored (no label is used).

        Returns
        -------
        self : EMPriorCorrection
            Fitted.
        """
        check_params(self)
        probas = _check_probas(probas)
        k = probas.shape[1]
        train = (
            np.full(k, 1.0 / k)
            if self.train_prior is None
            else _check_prior(self.train_prior, k, "train_prior")
        )
        prior, n_iter, moved = train.copy(), 0, np.inf
        while n_iter < self.max_iter and moved >= self.tol:
            new = np.clip(prior_shift(probas, train, prior).mean(axis=0), _TINY, None)
            new /= new.sum()
            moved = np.abs(new - prior).max()
            prior, n_iter = new, n_iter + 1
        self.prior_ = prior
        self.train_prior_ = train
        self.n_iter_ = n_iter
        self.n_classes_ = k
        return self

    def transform(self, probas):
        """Probabilities under the estimated prior (:func:`prior_shift`).

        Parameters
        ----------
        probas : array-like of shape (n_images, n_classes)
            The classifier's probabilities.

        Returns
        -------
        probas : ndarray of shape (n_images, n_classes)
            Rows sum to 1.
        """
        check_is_fitted(self, "prior_")
        probas = _check_fitted_probas(self, probas)
        return prior_shift(probas, self.train_prior_, self.prior_)

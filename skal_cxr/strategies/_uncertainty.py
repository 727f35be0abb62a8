"""Uncertainty of the mean prediction: maximum entropy, margin, least confident.

These scores need only class probabilities. With an estimator that has
``predict_proba_samples`` (such as :class:`~skal_cxr.MCDropoutCNN`) they are
computed on the Monte Carlo mean (the Bayesian predictive distribution);
otherwise on ``predict_proba``. Entropies use the natural logarithm (nats).
"""

import numpy as np
from scipy.special import entr

from ._base import make_strategy, mean_probas

__all__ = [
    "entropy_scores",
    "margin_scores",
    "least_confident_scores",
    "max_entropy",
    "margin_sampling",
    "least_confident",
]


def entropy_scores(probas):
    """Predictive entropy ``H[p] = -sum_c p_c log p_c`` of each image, in nats.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes) or (n_mc_samples, n_images, n_classes)
        Class probabilities; Monte Carlo samples are averaged first.

    Returns
    -------
    scores : ndarray of shape (n_images,)
        ``0 log 0`` counts as 0.
    """
    return entr(mean_probas(probas)).sum(axis=1)


def margin_scores(probas):
    """One minus the margin between the two most probable classes.

    ``1 - (p_(1) - p_(2))``, so that higher means more uncertain.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes) or (n_mc_samples, n_images, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_images,), in [0, 1]
    """
    p = np.sort(mean_probas(probas), axis=1)
    return 1.0 - (p[:, -1] - p[:, -2])


def least_confident_scores(probas):
    """One minus the probability of the most probable class, ``1 - max_c p_c``.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes) or (n_mc_samples, n_images, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    return 1.0 - mean_probas(probas).max(axis=1)


_MEAN_NOTE = """
    Uses the Monte Carlo mean of ``predict_proba_samples`` when the estimator
    has it, else ``predict_proba``.
"""

max_entropy = make_strategy(
    entropy_scores,
    needs="probas",
    name="max_entropy",
    doc="""Query the images of highest predictive entropy (Shannon, 1948).

    Score: ``H[pbar] = -sum_c pbar_c log pbar_c`` in nats, where ``pbar`` is
    the predictive distribution; see :func:`entropy_scores`.
"""
    + _MEAN_NOTE,
)

margin_sampling = make_strategy(
    margin_scores,
    needs="probas",
    name="margin_sampling",
    doc="""Query the images with the smallest margin between the top two classes.

    Score: ``1 - (pbar_(1) - pbar_(2))`` (Scheffer et al., 2001); see
    :func:`margin_scores`.
"""
    + _MEAN_NOTE,
)

least_confident = make_strategy(
    least_confident_scores,
    needs="probas",
    name="least_confident",
    doc="""Query the images whose most probable class is least probable.

    Score: ``1 - max_c pbar_c`` (Lewis & Gale, 1994); see
    :func:`least_confident_scores`.
"""
    + _MEAN_NOTE,
)

"""Scores of the Monte Carlo posterior: mean STD, variation ratios, BALD.

Each score is a pure function of Monte Carlo probabilities of shape
``(n_mc_samples, n_images, n_classes)`` (Gal, Islam & Ghahramani, 2017, "Deep
Bayesian Active Learning with Image Data"). Entropies are in nats.
"""

import numpy as np
from scipy.special import entr

from ._base import check_samples, make_strategy

__all__ = [
    "mean_std_scores",
    "variation_ratio_scores",
    "bald_scores",
    "mean_std",
    "variation_ratios",
    "bald",
]


def mean_std_scores(samples):
    """Mean over classes of the standard deviation of the MC probabilities.

    ``sigma(x) = 1/C sum_c sqrt(E_w[p_c^2] - E_w[p_c]^2)``, the population
    standard deviation over the ``T`` samples (``ddof=0``).

    Parameters
    ----------
    samples : array-like of shape (n_mc_samples, n_images, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    return check_samples(samples).std(axis=0).mean(axis=1)


def variation_ratio_scores(samples):
    """One minus the frequency of the modal predicted class over MC samples.

    ``v(x) = 1 - f_m / T`` where ``f_m`` counts the samples whose arg-max
    class is the most frequent one.

    Parameters
    ----------
    samples : array-like of shape (n_mc_samples, n_images, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_images,), at most ``1 - 1/n_classes``
    """
    samples = check_samples(samples)
    n_mc_samples, _, n_classes = samples.shape
    votes = np.eye(n_classes, dtype=np.int64)[samples.argmax(axis=2)].sum(axis=0)
    return 1.0 - votes.max(axis=1) / n_mc_samples


def bald_scores(samples):
    """BALD: mutual information between the label and the model parameters.

    ``I[y; w | x] = H[E_w p(y|x,w)] - E_w H[p(y|x,w)]``, the entropy of the
    mean minus the mean entropy, in nats; clipped at 0 against rounding.

    Parameters
    ----------
    samples : array-like of shape (n_mc_samples, n_images, n_classes)

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    samples = check_samples(samples)
    entropy_of_mean = entr(samples.mean(axis=0)).sum(axis=1)
    mean_entropy = entr(samples).sum(axis=2).mean(axis=0)
    return np.maximum(entropy_of_mean - mean_entropy, 0.0)


mean_std = make_strategy(
    mean_std_scores,
    needs="samples",
    name="mean_std",
    doc="""Query the images of largest mean standard deviation of MC probabilities.

    Score: ``1/C sum_c sqrt(E_w[p_c^2] - E_w[p_c]^2)`` (Kampffmeyer et al.,
    2016); see :func:`mean_std_scores`. Needs ``predict_proba_samples``.
""",
)

variation_ratios = make_strategy(
    variation_ratio_scores,
    needs="samples",
    name="variation_ratios",
    doc="""Query the images whose MC predictions disagree most with their mode.

    Score: ``1 - f_m / T`` (Freeman, 1965); see :func:`variation_ratio_scores`.
    Needs ``predict_proba_samples``.
""",
)

bald = make_strategy(
    bald_scores,
    needs="samples",
    name="bald",
    doc="""Query the images of largest mutual information between label and weights.

    Score: ``H[E_w p(y|x,w)] - E_w H[p(y|x,w)]`` in nats (Houlsby et al.,
    2011, "Bayesian Active Learning by Disagreement"); see
    :func:`bald_scores`. Needs ``predict_proba_samples``.
""",
)

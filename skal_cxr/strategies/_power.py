"""PowerBALD: stochastic batch acquisition from BALD scores.

Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal (2023),
"Stochastic Batch Acquisition: A Simple Baseline for Deep Active Learning"
(TMLR). Instead of the top-``n`` scores, a batch is drawn without replacement
with probability proportional to ``score ** beta``: the scores of the later
picks are stale anyway, and sampling gives diversity at the cost of top-``n``.
"""

import numpy as np

from ._base import run_strategy, select_top, strategy_doc
from ._bayesian import bald_scores

__all__ = ["power_probabilities", "power_bald"]


def _check_beta(beta):
    if isinstance(beta, bool) or not np.isfinite(beta) or beta < 0:
        raise ValueError(f"beta must be a finite number >= 0; got {beta!r}.")
    return float(beta)


def power_probabilities(scores, beta=1.0):
    """Probability of each image being the first one drawn: ``s_i^beta / sum_j s_j^beta``.

    Parameters
    ----------
    scores : array-like of shape (n_images,)
        Non-negative scores (such as BALD).
    beta : float, default=1.0
        ``0`` samples uniformly; larger values approach top-``n``.

    Returns
    -------
    probabilities : ndarray of shape (n_images,)
        Uniform when every score is 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    beta = _check_beta(beta)
    if scores.ndim != 1 or np.any(~(scores >= 0)):
        raise ValueError("scores must be a 1-D array of non-negative numbers.")
    weights = np.where(scores > 0, scores, 0.0) ** beta if beta > 0 else np.ones_like(scores)
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(scores), 1.0 / len(scores))


def power_sample(scores, n_instances, beta, rng):
    """Draw without replacement with probability proportional to ``scores ** beta``.

    Gumbel-top-``n`` (successive sampling): ``argtop_n(beta log s_i + G_i)``
    with i.i.d. standard Gumbel ``G_i``. Images of score 0 come last, in random
    order.
    """
    probabilities = power_probabilities(scores, beta)
    with np.errstate(divide="ignore"):
        keys = np.log(probabilities) + rng.gumbel(size=len(probabilities))
    return select_top(keys, n_instances, rng)


def _select(ctx, n_instances, beta=1.0):
    scores = ctx.sample_statistic(bald_scores)
    positions = power_sample(scores, n_instances, beta, ctx.rng)
    return positions, scores[positions]


def power_bald(
    learner,
    X_pool,
    n_instances=1,
    *,
    beta=1.0,
    pool_size=None,
    n_mc_samples=None,
    random_state=None,
):
    return run_strategy(
        _select,
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name="power_bald",
        beta=beta,
    )


power_bald.__doc__ = strategy_doc(
    """Draw a batch with probability proportional to BALD ** beta (PowerBALD).

    Sampling without replacement, ``p(x_i) = s_i^beta / sum_j s_j^beta`` with
    ``s`` the :func:`~skal_cxr.strategies.bald_scores` (Kirsch et al., 2023);
    see :func:`power_probabilities`. Needs ``predict_proba_samples``.
""",
    """\
    beta : float, default=1.0
        Exponent of the scores: 0 samples uniformly, large values approach
        top-``n_instances`` BALD.
""",
    scores="The BALD score of each queried image.",
)
power_bald.select = _select

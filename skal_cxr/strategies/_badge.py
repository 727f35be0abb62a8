"""BADGE: k-means++ seeding on gradient embeddings of the last layer.

Ash, Zhang, Krishnamurthy, Langford & Agarwal (2020), "Deep Batch Active
Learning by Diverse, Uncertain Gradient Lower Bounds" (ICLR, arXiv
1906.03671). The gradient of the cross-entropy loss with respect to the last
layer's weights, if the predicted class were the label, is ``(p -
onehot(argmax p)) (x) h(x)``, where ``h`` are the penultimate features: its
norm measures uncertainty, its direction what the image would teach. The
batch is drawn by k-means++ seeding in that space, so it is both uncertain
and diverse. Needs a fitted network.
"""

import numpy as np

from .._random import resolve_rng
from ._base import mean_probas, run_strategy, strategy_doc

__all__ = ["gradient_embeddings", "kmeans_plusplus_seeding", "badge"]


def gradient_embeddings(probas, features):
    """Last-layer gradient embeddings ``(p - onehot(argmax p)) (x) h``.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes) or (n_mc_samples, n_images, n_classes)
        Class probabilities ``p`` (Monte Carlo samples are averaged).
    features : array-like of shape (n_images, n_features)
        Penultimate features ``h`` (the input of the last linear layer).

    Returns
    -------
    embeddings : ndarray of shape (n_images, n_classes * n_features)
        Row ``i`` is ``outer(p_i - e_{argmax p_i}, h_i)`` flattened class by
        class.
    """
    p = mean_probas(probas)
    h = np.asarray(features, dtype=np.float64)
    if h.ndim != 2 or len(h) != len(p):
        raise ValueError(f"features must have shape ({len(p)}, n_features); got {h.shape}.")
    factor = p - np.eye(p.shape[1])[p.argmax(axis=1)]
    return (factor[:, :, None] * h[:, None, :]).reshape(len(p), -1)


def kmeans_plusplus_seeding(embeddings, n_instances, random_state=None):
    """k-means++ seeding as BADGE uses it: largest norm first, then D^2 sampling.

    The first pick is the row of largest norm; each later pick is drawn with
    probability proportional to its squared distance to the nearest pick so
    far (uniformly among the unpicked rows once all distances are 0).

    Parameters
    ----------
    embeddings : array-like of shape (n_images, n_features)
        Gradient embeddings (:func:`gradient_embeddings`).
    n_instances : int
        Picks, at most ``n_images``.
    random_state : int, RandomState, Generator or None, default=None
        Draws the picks after the first.

    Returns
    -------
    positions : ndarray of shape (n_instances,)
        In picking order.
    scores : ndarray of shape (n_instances,)
        The squared distance of each pick to the nearest earlier pick (its
        squared norm for the first).
    """
    G = np.asarray(embeddings, dtype=np.float64)
    rng = resolve_rng(random_state)
    d2 = np.einsum("ij,ij->i", G, G)
    picked, scores = [], []
    for _ in range(n_instances):
        if not picked:
            i = int(np.argmax(d2))
        else:
            weights = d2.copy()
            weights[picked] = 0.0
            if weights.sum() <= 0:
                weights = np.ones(len(G))
                weights[picked] = 0.0
            i = int(rng.choice(len(G), p=weights / weights.sum()))
        picked.append(i)
        scores.append(d2[i])
        d2 = np.minimum(d2, np.sum((G - G[i]) ** 2, axis=1))
    return np.array(picked, dtype=np.intp), np.array(scores, dtype=np.float64)


def _select(ctx, n_instances):
    embeddings = gradient_embeddings(ctx.mean_probas(), ctx.features())
    return kmeans_plusplus_seeding(embeddings, n_instances, ctx.rng)


def badge(learner, X_pool, n_instances=1, *, pool_size=None, n_mc_samples=None, random_state=None):
    return run_strategy(
        _select,
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name="badge",
    )


badge.__doc__ = strategy_doc(
    """Query a diverse, uncertain batch by k-means++ on gradient embeddings (BADGE).

    Embeddings: :func:`gradient_embeddings` of the predictive probabilities
    (the Monte Carlo mean when the estimator has ``predict_proba_samples``)
    and the network's penultimate features (``embed``); picks:
    :func:`kmeans_plusplus_seeding` (Ash et al., 2020).
""",
    scores="""The squared distance of each queried image's gradient embedding
        to the nearest earlier pick (its squared norm for the first).""",
)
badge.select = _select

"""Core-set selection: greedy k-center on the network's embeddings.

Sener & Savarese (2018), "Active Learning for Convolutional Neural Networks:
A Core-Set Approach" (ICLR). Each pick is the pool image farthest (Euclidean
distance) from every labeled image and every image picked before it, so the
batch covers the embedding space. This is the greedy 2-approximation of the
k-center problem, without the paper's robust (outlier) refinement.
"""

import numpy as np
from sklearn.metrics import pairwise_distances_argmin_min

from .._random import resolve_rng
from ._base import run_strategy, select_top, strategy_doc

__all__ = ["coreset_scores", "k_center_greedy", "coreset"]


def coreset_scores(embeddings, centers):
    """Euclidean distance of each image to its nearest center.

    Parameters
    ----------
    embeddings : array-like of shape (n_images, n_features)
    centers : array-like of shape (n_centers, n_features) or None
        ``None`` or no centers gives infinite distances.

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    X = np.asarray(embeddings, dtype=np.float64)
    if centers is None or len(centers) == 0:
        return np.full(len(X), np.inf)
    return pairwise_distances_argmin_min(X, np.asarray(centers, dtype=np.float64))[1]


def k_center_greedy(embeddings, n_instances, centers=None, random_state=None):
    """Greedy k-center: repeatedly pick the image farthest from all centers.

    Parameters
    ----------
    embeddings : array-like of shape (n_images, n_features)
    n_instances : int
    centers : array-like of shape (n_centers, n_features) or None, default=None
        Initial centers (the labeled set); without any, the first pick is
        uniformly random.
    random_state : int, RandomState, Generator or None, default=None
        Breaks ties.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        In picking order.
    """
    return _k_center(embeddings, n_instances, centers, random_state)[0]


def _k_center(embeddings, n_instances, centers, random_state):
    """Greedy k-center picks and the distance of each pick to its nearest center."""
    X = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    rng = resolve_rng(random_state)
    distance = coreset_scores(X, centers)
    selected, distances = [], []
    for _ in range(n_instances):
        scores = distance.copy()
        scores[selected] = np.nan
        i = int(select_top(scores, 1, rng)[0])
        selected.append(i)
        distances.append(distance[i])
        distance = np.minimum(distance, np.linalg.norm(X - X[i], axis=1))
    return np.array(selected, dtype=np.intp), np.array(distances)


def _select(ctx, n_instances):
    # skal_cxr's learner keeps its labeled set in X_training_, modAL's in X_training
    X_training = getattr(ctx.learner, "X_training_", None)
    if X_training is None:
        X_training = getattr(ctx.learner, "X_training", None)
    centers = None
    if X_training is not None and len(X_training) > 0:
        centers = ctx.features(X_training)
    return _k_center(ctx.features(), n_instances, centers, ctx.rng)


def coreset(
    learner, X_pool, n_instances=1, *, pool_size=None, n_mc_samples=None, random_state=None
):
    return run_strategy(
        _select,
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name="coreset",
    )


coreset.__doc__ = strategy_doc(
    """Query a batch covering the embedding space (greedy k-center core-set).

    Each pick maximises ``min_{c in centers} ||phi(x) - phi(c)||`` where
    ``phi`` is the network's ``embed`` and the centers are the learner's
    labeled images (``X_training_``, or ``X_training`` for modAL's learner)
    and the earlier picks (Sener & Savarese, 2018); see
    :func:`k_center_greedy`. With ``on_transformed=True`` on the
    learner, ``phi`` is its ``transform_without_estimating`` instead.
    ``n_mc_samples`` is accepted for a uniform interface and unused.
""",
    scores="""The distance of each queried image to its nearest center when
        it was picked (infinite without labeled images).""",
)
coreset.select = _select

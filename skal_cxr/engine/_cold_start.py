"""The first batch of a labeling project, chosen without any label (a cold start)."""

from types import SimpleNamespace

import numpy as np

from ._rounds import _round_config, build_estimator, initial_indices

__all__ = ["COLD_STARTS", "cold_start_batch"]

#: The cold starts of labeling projects (``init_project(cold_start=...)``).
COLD_STARTS = ("random", "k_center", "typicality", "probcover")


def cold_start_batch(
    method, n_pool, n_batch, n_reserve, *, config, n_classes, X=None, features=None
):
    """The first batch and its reserve, chosen without labels.

    Parameters
    ----------
    method : {"random", "k_center", "typicality", "probcover"}
        ``random``: the initial set a simulation draws when it has no
        labels (:func:`initial_indices` with ``stratify=False``), then a
        reserve drawn at random from the rest. ``k_center``: greedy k-center
        on the embeddings of the untrained, seeded network.
        ``typicality`` / ``probcover``: the label-free strategy on
        ``features``; the batch is its first picks, the reserve the next.
    n_pool : int
        Number of images in the pool.
    n_batch, n_reserve : int
        Sizes of the batch and of the reserve.
    config : RoundConfig or mapping
        The round configuration: its seed, and the network of ``k_center``.
    n_classes : int
        Number of classes (of that network).
    X : array-like of shape (n_pool, ...), default=None
        The pool images, needed by ``k_center``.
    features : ndarray of shape (n_pool, n_features), default=None
        The pool's label-free view, needed by ``typicality`` and
        ``probcover`` (labeling projects: 50 principal components of the
        pixels, cached beside the image cache).

    Returns
    -------
    batch : ndarray of shape (n_batch,)
        Pool positions, 0-based.
    reserve : ndarray of shape (n_reserve,)
        Pool positions after the batch, in rank order.
    """
    from ..strategies import STRATEGIES, k_center_greedy

    if method not in COLD_STARTS:
        raise ValueError(f"cold start must be one of {COLD_STARTS}; got {method!r}.")
    config = _round_config(config)
    seed, n = config.seed, int(n_pool)
    if method == "random":
        batch = initial_indices(np.zeros(n, dtype=np.int64), n_batch, seed, stratify=False)
        rest = np.setdiff1d(np.arange(n), batch)
        reserve = np.random.default_rng([seed, 2]).permutation(rest)[:n_reserve]
        return np.asarray(batch), np.asarray(reserve)
    if method == "k_center":
        if X is None:
            raise ValueError("cold start 'k_center' needs the pool images (X).")
        embedding = build_estimator(config, n_classes).initialize().embed(X)
        order = k_center_greedy(embedding, n_batch + n_reserve, random_state=seed)
    else:
        if features is None:
            raise ValueError(f"cold start {method!r} needs the pool's features.")
        learner = SimpleNamespace(estimator=None, X_training=None)
        order, _ = STRATEGIES[method](
            learner,
            features,
            n_batch + n_reserve,
            embedding="precomputed",
            random_state=np.random.default_rng([seed, 1]),
        )
    order = np.asarray(order)
    return order[:n_batch], order[n_batch:]

"""The first batch of a labeling project, chosen without any label (a cold start).

A thin name over :func:`~skal_cxr.engine.initial_set` with a reserve: the
one way the engine chooses labels before any model.
"""

import dataclasses

import numpy as np

from ._config import COLD_STARTS
from ._rounds import _round_config, build_estimator, initial_set

__all__ = ["COLD_STARTS", "cold_start_batch"]


def cold_start_batch(
    method, n_pool, n_batch, n_reserve, *, config, n_classes, X=None, features=None
):
    """The first batch and its reserve, chosen without labels.

    Parameters
    ----------
    method : {"random", "k_center", "typicality", "probcover"}
        ``random``: the initial set a simulation draws when it has no
        labels, then a reserve drawn at random from the rest. ``k_center``:
        greedy k-center on the embeddings of the untrained, seeded CNN
        (the configuration's ``estimator``, whatever its ``model``).
        ``typicality`` / ``probcover``: the label-free strategy on
        ``features``; the batch is its first picks, the reserve the next.
        All through :func:`~skal_cxr.engine.initial_set`.
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
    if method not in COLD_STARTS:
        raise ValueError(f"cold start must be one of {COLD_STARTS}; got {method!r}.")
    config = _round_config(config)
    if method == "k_center" and X is None:
        raise ValueError("cold start 'k_center' needs the pool images (X).")
    if method in ("typicality", "probcover") and features is None:
        raise ValueError(f"cold start {method!r} needs the pool's features.")
    batch, reserve = initial_set(
        method,
        n_batch,
        config.seed,
        y_pool=np.zeros(int(n_pool), dtype=np.int64),
        X_pool=X if method == "k_center" else None,
        features=features if method != "k_center" else None,
        estimator=(
            build_estimator(dataclasses.replace(config, model="cnn"), n_classes)
            if method == "k_center"
            else None
        ),
        n_reserve=n_reserve,
    )
    return np.asarray(batch), np.asarray(reserve)

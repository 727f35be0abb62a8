"""The primitives of an active-learning round: initial set, estimator, query, threads.

Simulation (:mod:`skal_cxr.simulation`) and labeling
(:mod:`skal_cxr.labeling`) run their rounds with these, so a labeling
project answered by an oracle acquires the same images as a simulation with
the same seed.
"""

import time
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .._lazy import take_rows
from ..callbacks import CosineAnnealing
from ..models import MCDropoutCNN
from ._config import RoundConfig

__all__ = ["initial_indices", "build_estimator", "query_round", "torch_threads"]


def _round_config(config):
    return config if isinstance(config, RoundConfig) else RoundConfig.from_dict(config)


def initial_indices(y_pool, n_initial, seed, stratify=True):
    """The initial labeled set: ``n_initial`` pool positions, stratified by class.

    Falls back to a plain random draw when a class is too rare to stratify,
    or with ``stratify=False`` (a cold start without labels, as in a
    labeling project). The same seed gives every strategy the same initial
    set (paired runs).

    Parameters
    ----------
    y_pool : ndarray of shape (n_pool,)
        Class codes of the pool (zeros when there are no labels yet).
    n_initial : int
        Size of the initial set.
    seed : int
        Seeds the draw.
    stratify : bool, default=True
        Keep the class proportions of ``y_pool``.

    Returns
    -------
    indices : ndarray of shape (n_initial,)
        Pool positions, sorted.
    """
    index = np.arange(len(y_pool))
    if n_initial >= len(y_pool):
        return index
    counts = np.bincount(y_pool)
    counts = counts[counts > 0]
    stratify = y_pool if stratify and counts.min() >= 2 and n_initial >= len(counts) else None
    chosen, _ = train_test_split(
        index, train_size=n_initial, stratify=stratify, random_state=seed
    )
    return np.sort(chosen)


def build_estimator(config, n_classes, seed=None):
    """The :class:`~skal_cxr.MCDropoutCNN` of a round, seeded.

    Parameters
    ----------
    config : RoundConfig or mapping
        The round configuration (a mapping is read with
        :meth:`RoundConfig.from_dict`).
    n_classes : int
        Number of classes (codes ``0 .. n_classes - 1``).
    seed : int or None, default=None
        ``random_state`` of the network; ``None`` takes ``config.seed``.

    Returns
    -------
    estimator : MCDropoutCNN
        Unfitted.
    """
    config = _round_config(config)
    callbacks = []
    if config.training["lr_schedule"] == "cosine":
        callbacks.append(("cosine_annealing", CosineAnnealing()))
    return MCDropoutCNN(
        classes=np.arange(n_classes),
        class_weight=config.class_weight,
        sampler=config.sampler,
        n_mc_samples=config.n_mc_samples,
        warm_start=config.warm_start,
        random_state=config.seed if seed is None else seed,
        max_epochs=config.training["max_epochs"],
        min_train_steps=config.training["min_train_steps"],
        callbacks=callbacks,
        **dict(config.estimator),
    )


@contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch threads, then restore the previous number.

    Parameters
    ----------
    n : int
        Threads.

    Yields
    ------
    None
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def query_round(learner, X, labeled, n_instances, config, random_state):
    """One round's query: ``n_instances`` pool positions not in ``labeled``.

    The pool is every position of ``X`` not in ``labeled``, in increasing
    order; the strategy sees it with the configuration's ``n_mc_samples`` and
    ``pool_size``.

    Parameters
    ----------
    learner : ActiveLearner
        A fitted learner.
    X : array-like of shape (n_images, 1, H, W)
        Every image, labeled or not.
    labeled : list of int
        Positions of ``X`` not to query.
    n_instances : int
        Images to query.
    config : RoundConfig or mapping
        The round configuration.
    random_state : int
        Seeds the query.

    Returns
    -------
    queried : list of int
        Positions in ``X``, most informative first.
    scores : list of float or None
        The strategy's scores of the queried images, when it returns them.
    query_time : float
        Seconds.
    """
    config = _round_config(config)
    unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
    t0 = time.perf_counter()
    idx, _, scores = learner.query(
        take_rows(X, unlabeled), n_instances, return_metrics=True,
        n_mc_samples=config.n_mc_samples, pool_size=config.pool_size,
        random_state=random_state,
    )
    query_time = time.perf_counter() - t0
    queried = unlabeled[np.asarray(idx, dtype=np.int64)].tolist()
    if scores is not None:
        scores = np.asarray(scores, dtype=float).ravel()
        scores = scores.tolist() if len(scores) == len(queried) else None
    return queried, scores, query_time

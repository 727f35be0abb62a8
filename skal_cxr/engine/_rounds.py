"""The primitives of an active-learning round: initial set, estimator, query, threads.

Simulation (:mod:`skal_cxr.simulation`) and labeling
(:mod:`skal_cxr.labeling`) run their rounds with these, so a labeling
project answered by an oracle acquires the same images as a simulation with
the same seed.
"""

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .._random import derived_rng
from ..callbacks import CosineAnnealing
from ..models import MCDropoutCNN
from ._config import _round_config

__all__ = [
    "initial_indices",
    "initial_set",
    "check_initial",
    "uses_labels",
    "build_estimator",
    "torch_threads",
]

#: Ways to choose the initial labeled set besides a label-free strategy's name.
#: ``"stratified"`` is the only one that reads the pool's labels (an oracle).
INITIAL_METHODS = ("random", "stratified", "strategy")


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
    chosen, _ = train_test_split(index, train_size=n_initial, stratify=stratify, random_state=seed)
    return np.sort(chosen)


def uses_labels(initial):
    """Whether the initial-set method ``initial`` reads the pool's labels.

    Parameters
    ----------
    initial : str
        An ``initial`` setting (see :func:`initial_set`).

    Returns
    -------
    oracle : bool
        ``True`` only for ``"stratified"``, which draws the initial set by
        class: an oracle no real project has, for reference runs only.
    """
    return initial == "stratified"


def check_initial(initial, error=ValueError):
    """Validate an ``initial`` setting; return it.

    Parameters
    ----------
    initial : str
        ``"random"``, ``"stratified"``, ``"strategy"`` or the name of a
        label-free strategy of :data:`skal_cxr.strategies.STRATEGIES`.
    error : exception class, default=ValueError
        Raised, with a one-line message, for anything else.

    Returns
    -------
    initial : str
        Unchanged.
    """
    from ..strategies import STRATEGIES, is_label_free

    if initial in INITIAL_METHODS:
        return initial
    if initial in STRATEGIES and is_label_free(STRATEGIES[initial]):
        return initial
    free = sorted(n for n, s in STRATEGIES.items() if is_label_free(s) and n != "random")
    raise error(
        f"initial must be 'random', 'stratified', 'strategy' or a label-free strategy "
        f"({', '.join(free)}); got {initial!r}."
    )


def initial_set(
    initial,
    n_initial,
    seed,
    *,
    y_pool=None,
    X_pool=None,
    strategy=None,
    estimator=None,
    features=None,
    n_reserve=None,
):
    """The initial labeled set of a run or project, chosen as ``initial`` says.

    The one way to choose labels before any model: simulations, studies and
    benchmarks call it for their initial set, labeling projects for their
    first batch and its reserve (``n_reserve``, through
    :func:`~skal_cxr.engine.cold_start_batch`). No learner is involved: a
    label-free strategy sees only the pool
    (:func:`~skal_cxr.strategies.label_free_query`).

    Parameters
    ----------
    initial : str
        ``"random"``: uniformly at random, no label used (the default of
        simulations, studies and labeling projects). ``"stratified"``: drawn
        by class from ``y_pool`` (an oracle: a real project has no labels
        yet; reference runs only). ``"strategy"``: the run's own
        ``strategy`` picks its first labels when it is label-free (see
        :func:`~skal_cxr.strategies.is_label_free`), else ``"random"``. A
        label-free strategy's name (``"typicality"``, ``"probcover"``...):
        that strategy picks the initial set for every run. ``"k_center"``:
        greedy k-center on the embeddings of the untrained ``estimator``.
    n_initial : int
        Size of the initial set.
    seed : int
        Seeds the draw or the strategy.
    y_pool : ndarray of shape (n_pool,) or None, default=None
        Class codes of the pool; read only by ``"stratified"`` (its length
        sizes the pool when neither ``X_pool`` nor ``features`` is given).
    X_pool : array-like of shape (n_pool, ...) or None, default=None
        The pool images, needed when a strategy or ``k_center`` chooses.
    strategy : str or None, default=None
        The run's strategy name, for ``initial="strategy"``.
    estimator : estimator or None, default=None
        The unfitted estimator a strategy may inspect, and the network
        whose embeddings ``k_center`` reads.
    features : ndarray of shape (n_pool, n_features) or None, default=None
        A label-free view of the pool the strategy reads instead of the
        images (``embedding="precomputed"``).
    n_reserve : int or None, default=None
        Also choose this many images after the set (a project's reserve):
        the set and the reserve come back in picking order.

    Returns
    -------
    indices : ndarray of shape (n_initial,)
        Pool positions, sorted (in picking order with ``n_reserve``).
    reserve : ndarray of shape (n_reserve,)
        Only with ``n_reserve``: the next positions, in picking order
        (``"random"``: a seeded permutation of the rest).
    """
    from ..strategies import STRATEGIES, is_label_free, k_center_greedy, label_free_query

    if initial != "k_center":
        check_initial(initial)
    view = features if features is not None else X_pool
    n_pool = len(view) if view is not None else len(y_pool)
    if initial == "strategy":
        initial = (
            strategy
            if strategy in STRATEGIES
            and is_label_free(STRATEGIES[strategy])
            and strategy != "random"
            else "random"
        )
    n_more = 0 if n_reserve is None else int(n_reserve)
    if initial in ("random", "stratified"):
        y = y_pool if initial == "stratified" else np.zeros(n_pool, dtype=np.int64)
        chosen = initial_indices(np.asarray(y), n_initial, seed, stratify=initial == "stratified")
        if n_reserve is None:
            return chosen
        rest = np.setdiff1d(np.arange(n_pool), chosen)
        return np.asarray(chosen), derived_rng(seed, 2).permutation(rest)[:n_more]
    if n_reserve is None and n_initial >= n_pool:
        return np.arange(n_pool)
    if view is None:
        raise ValueError(f"initial={initial!r} needs the pool images (X_pool).")
    if initial == "k_center":
        if estimator is None:
            raise ValueError("initial='k_center' needs the untrained network (estimator).")
        order = k_center_greedy(
            estimator.initialize().embed(X_pool), n_initial + n_more, random_state=seed
        )
    else:
        params = {} if features is None else {"embedding": "precomputed"}
        order, _ = label_free_query(
            STRATEGIES[initial],
            view,
            n_initial + n_more,
            random_state=derived_rng(seed, 1),
            estimator=estimator,
            **params,
        )
    order = np.asarray(order, dtype=np.int64)
    if n_reserve is None:
        return np.sort(order)
    return order[:n_initial], order[n_initial:]


def build_estimator(config, n_classes, seed=None, *, X_pool=None, encoder=None, cache_dir=None):
    """The seeded, unfitted estimator of a round configuration.

    ``config.model == "cnn"``: an :class:`~skal_cxr.MCDropoutCNN` from
    pixels. ``"view"``: a :class:`~skal_cxr.FrozenViewClassifier`, an MC
    Dropout head on the pool's frozen encoder: ``encoder`` when given, else
    the one :func:`~skal_cxr.engine.pool_view` trains once on ``X_pool``
    (without labels) and caches.

    Parameters
    ----------
    config : RoundConfig or mapping
        The round configuration (a mapping is read with
        :meth:`RoundConfig.from_dict`: without a ``model`` key, the CNN).
    n_classes : int
        Number of classes (codes ``0 .. n_classes - 1``).
    seed : int or None, default=None
        ``random_state`` of the estimator; ``None`` takes ``config.seed``.
    X_pool : array-like of shape (n_images, 1, H, W) or None, default=None
        The whole pool, for the view's encoder (``model="view"`` without
        ``encoder``).
    encoder : transformer or None, default=None
        A fitted encoder to use instead of the pool's (``model="view"``).
    cache_dir : path-like or None, default=None
        Where :func:`~skal_cxr.engine.pool_view` keeps the pool's encoder.

    Returns
    -------
    estimator : MCDropoutCNN or FrozenViewClassifier
        Unfitted.

    Raises
    ------
    ValueError
        For ``model="view"`` with neither ``encoder`` nor ``X_pool``.
    """
    config = _round_config(config)
    random_state = config.seed if seed is None else seed
    if config.model == "view":
        from ..frozen_view import FrozenViewClassifier

        if encoder is None:
            if X_pool is None:
                raise ValueError(
                    "model='view' needs the pool (X_pool) or its fitted encoder (encoder)."
                )
            from ._view import pool_view

            encoder = pool_view(X_pool, config, cache_dir=cache_dir)
        return FrozenViewClassifier(
            encoder,
            classes=np.arange(n_classes),
            class_weight=config.class_weight,
            n_mc_samples=config.n_mc_samples,
            random_state=random_state,
            **dict(config.head),
        )
    callbacks = []
    if config.training["lr_schedule"] == "cosine":
        callbacks.append(("cosine_annealing", CosineAnnealing()))
    return MCDropoutCNN(
        classes=np.arange(n_classes),
        class_weight=config.class_weight,
        sampler=config.sampler,
        n_mc_samples=config.n_mc_samples,
        warm_start=config.warm_start,
        random_state=random_state,
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

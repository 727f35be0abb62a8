"""The backend's only use of the round engine (:mod:`skal_cxr.engine`).

Training, the label-free cold start and the acquisition order all go
through :func:`round_config`, :func:`fit_model`, :func:`restore_learner`,
:func:`cold_start_order` and :func:`acquisition_order`, so that a change of
the engine's public names touches this module alone.
"""

import time

import numpy as np

__all__ = [
    "round_config",
    "fit_model",
    "restore_learner",
    "cold_start_order",
    "acquisition_order",
    "mc_probabilities",
]


def round_config(strategy, seed, rounds):
    """The checked :class:`skal_cxr.engine.RoundConfig` of the backend.

    Parameters
    ----------
    strategy : str
        Acquisition function (a key of :data:`skal_cxr.strategies.STRATEGIES`).
    seed : int
        Seeds the network and the queries.
    rounds : dict
        Other round parameters (``n_mc_samples``, ``estimator``, ``training``, ...).

    Returns
    -------
    config : RoundConfig

    Raises
    ------
    ConfigError
        For an unknown strategy or an invalid parameter.
    """
    from ..engine import RoundConfig

    # the backend trains the MC Dropout CNN from pixels unless told otherwise
    rounds = {"model": "cnn", **rounds}
    return RoundConfig.from_params(strategy=strategy, seed=seed, **rounds)


def _learner(estimator, config):
    from ..learner import ActiveLearner
    from ..strategies import STRATEGIES

    return ActiveLearner(estimator, query_strategy=STRATEGIES[config.strategy])


def fit_model(config, X, y, n_classes):
    """A learner whose network is fitted on the annotated images.

    Parameters
    ----------
    config : RoundConfig
        The backend's round configuration.
    X : ndarray of shape (n_annotated, 1, H, W)
        The annotated images.
    y : ndarray of shape (n_annotated,)
        Their class codes.
    n_classes : int
        Classes of the project.

    Returns
    -------
    learner : ActiveLearner
        Fitted (its network is ``learner.estimator_``).
    fit_time : float
        Seconds.
    """
    from ..engine import build_estimator, torch_threads

    with torch_threads(config.torch_threads):
        learner = _learner(build_estimator(config, n_classes), config)
        t0 = time.perf_counter()
        learner.fit(X, np.asarray(y, dtype=np.int64))
    return learner, time.perf_counter() - t0


def restore_learner(config, estimator, X, y):
    """A learner around a saved network (a restarted backend).

    Parameters
    ----------
    config : RoundConfig
        The backend's round configuration.
    estimator : MCDropoutCNN
        The saved, fitted network.
    X : ndarray of shape (n_annotated, 1, H, W)
        The images it was trained on (read by strategies that compare the
        pool with the labeled set).
    y : ndarray of shape (n_annotated,)
        Their class codes.

    Returns
    -------
    learner : ActiveLearner
    """
    from ..engine import build_estimator

    learner = _learner(build_estimator(config, len(estimator.classes_)), config)
    learner.estimator_ = estimator
    learner.classes_ = estimator.classes_
    learner.X_training_, learner.y_training_ = X, np.asarray(y, dtype=np.int64)
    return learner


def cold_start_order(method, config, n_classes, X):
    """All pool positions, in the order of a label-free acquisition.

    Parameters
    ----------
    method : {"typicality", "random"}
        The cold start (typicality on 50 principal components of the pixels;
        ``random`` when the pool is too small for it).
    config : RoundConfig
        Seeds the order.
    n_classes : int
        Classes of the project.
    X : ndarray of shape (n_pool, 1, H, W)
        The pool's images.

    Returns
    -------
    order : ndarray of shape (n_pool,)
        Positions in ``X``, first to label first.
    """
    from ..embeddings import PixelPCA
    from ..engine import cold_start_batch

    n = len(X)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    features = None
    if method == "typicality" and n >= 4:
        features = PixelPCA(n_components=min(50, n - 1), random_state=config.seed).fit_transform(X)
    else:
        method = "random"
    batch, reserve = cold_start_batch(
        method, n, n, 0, config=config, n_classes=n_classes, X=X, features=features
    )
    order = np.concatenate([batch, reserve]).astype(np.int64)
    missing = np.setdiff1d(np.arange(n), order)  # (a strategy that ranked fewer)
    return np.concatenate([order, missing])


def acquisition_order(learner, config, X, random_state):
    """All pool positions in the acquisition function's order, with their values.

    Parameters
    ----------
    learner : ActiveLearner
        Fitted.
    config : RoundConfig
        The acquisition function (``strategy``), ``n_mc_samples`` and ``pool_size``.
    X : ndarray of shape (n_pool, 1, H, W)
        The pool's images.
    random_state : int
        Seeds the query.

    Returns
    -------
    order : ndarray of shape (n_pool,)
        Positions in ``X``, most informative first.
    values : ndarray of shape (n_pool,) or None
        The acquisition value of each position of ``order`` (higher: label
        sooner), when the strategy scores every image.
    """
    from ..engine import query_round, torch_threads

    n = len(X)
    if n == 0:
        return np.zeros(0, dtype=np.int64), None
    with torch_threads(config.torch_threads):
        queried, values, _ = query_round(learner, X, [], n, config, random_state)
    order = np.asarray(queried, dtype=np.int64)
    if values is None or len(order) != n:
        missing = np.setdiff1d(np.arange(n), order)
        return np.concatenate([order, missing]), None
    return order, np.asarray(values, dtype=np.float64)


def mc_probabilities(learner, config, X):
    """Mean MC Dropout probability of each class.

    Parameters
    ----------
    learner : ActiveLearner
        Fitted.
    config : RoundConfig
        ``n_mc_samples``.
    X : ndarray of shape (n_images, 1, H, W)
        Images.

    Returns
    -------
    probabilities : ndarray of shape (n_images, n_classes)
    """
    from ..engine import torch_threads

    if len(X) == 0:
        return np.zeros((0, len(learner.classes_)))
    with torch_threads(config.torch_threads):
        samples = learner.estimator_.predict_proba_samples(X, config.n_mc_samples)
    return np.asarray(samples, dtype=np.float64).mean(axis=0)

"""Schedules: one strategy until some number of labels, then another.

Low and high budgets call for opposite strategies (Hacohen et al., 2022):
typical, representative images while the model knows little, uncertain ones
once it is worth asking. :func:`schedule` chains strategies by the number of
labeled images at the time of the query.
"""

import functools

import numpy as np

from .._validation import accepts_keyword, check_int
from ._base import strategy_doc
from ._embedding import labeled_images

__all__ = ["schedule", "is_label_free", "label_free_query", "call_stage"]


def call_stage(strategy, learner, X_pool, n_instances, X_labeled, kwargs):
    """Run one stage's strategy with the keyword arguments it accepts.

    Parameters
    ----------
    strategy : callable
        The stage's query strategy.
    learner : object
        The learner.
    X_pool : array-like of shape (n_images, ...)
        The pool.
    n_instances : int
        How many images to query.
    X_labeled : array-like or None
        Passed on when given.
    kwargs : dict
        ``pool_size``, ``n_mc_samples``, ``random_state`` and the strategies'
        own arguments; those the stage does not accept are dropped.

    Returns
    -------
    result : tuple of ndarray
        The stage's ``(indices, scores)``.
    """
    kwargs = dict(kwargs)
    if X_labeled is not None:
        kwargs["X_labeled"] = X_labeled
    passed = {k: v for k, v in kwargs.items() if accepts_keyword(strategy, k)}
    return strategy(learner, X_pool, n_instances, **passed)


def is_label_free(strategy, n_labeled=0):
    """Whether ``strategy`` can query with an unfitted estimator at ``n_labeled`` labels.

    Parameters
    ----------
    strategy : callable
        A query strategy; label-free ones have a true ``label_free``
        attribute (a callable one is asked with ``n_labeled``). A
        :func:`functools.partial` is judged by the function it wraps.
    n_labeled : int, default=0
        Labels so far.

    Returns
    -------
    label_free : bool
        ``True`` for typicality, ProbCover, random sampling and schedules
        starting with one of them.
    """
    while isinstance(strategy, functools.partial) and not hasattr(strategy, "label_free"):
        strategy = strategy.func  # partial(typicality, embedding=...) stays label-free
    flag = getattr(strategy, "label_free", False)
    return bool(flag(n_labeled) if callable(flag) else flag)


def label_free_query(strategy, X_pool, n_instances, *, random_state=None, estimator=None, **params):
    """Ask a label-free strategy for ``n_instances`` pool images, without any learner.

    Nothing is labeled yet, so the strategy sees no learner: only the pool
    and, for a strategy that reads the network (``embedding="network"``),
    the unfitted ``estimator``.

    Parameters
    ----------
    strategy : callable
        A strategy that is label-free at 0 labels
        (:func:`~skal_cxr.strategies.is_label_free`).
    X_pool : array-like of shape (n_pool, ...)
        The pool (images, or features with ``embedding="precomputed"``).
    n_instances : int
        Images to pick.
    random_state : int, Generator or None, default=None
        Seeds the strategy.
    estimator : estimator or None, default=None
        An unfitted estimator the strategy may inspect.
    **params
        Passed to the strategy (``embedding=``, ...).

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Positions in ``X_pool``, in the strategy's order.
    scores : ndarray of shape (n_instances,) or None
        The strategy's score of each pick, when it gives them.

    Raises
    ------
    ValueError
        When ``strategy`` needs labels.
    """
    if not is_label_free(strategy):
        name = getattr(strategy, "__name__", repr(strategy))
        raise ValueError(f"{name} needs labels: it cannot pick images before any is labeled.")
    result = strategy(estimator, X_pool, n_instances, random_state=random_state, **params)
    indices, scores = result if isinstance(result, tuple) else (result, None)
    return np.asarray(indices), scores


def schedule(stages):
    """A strategy that switches strategies as the labeled set grows.

    Parameters
    ----------
    stages : list of (strategy, int or None)
        ``(strategy, until)`` pairs: ``strategy`` answers the queries made
        while fewer than ``until`` images are labeled; ``until=None`` (last
        stage only) means from then on. ``until`` must increase.

    Returns
    -------
    scheduled : callable
        A modAL-protocol strategy ``scheduled(learner, X_pool,
        n_instances=1, *, pool_size=None, n_mc_samples=None,
        random_state=None, X_labeled=None, **kwargs) -> (indices, scores)``.
        The number of labels is ``len(X_labeled)``, else the size of the
        learner's labeled set (``X_training_``, else ``X_training``; 0
        without one). ``kwargs`` reach the
        stage's strategy when it accepts them (``embedding`` for
        typicality, ``n_mc_samples`` for BALD, ...). Its ``stage(n_labeled)``
        returns the strategy used at ``n_labeled`` labels; its
        ``label_free`` attribute tells whether that strategy is label-free.

    See Also
    --------
    is_label_free : Whether a strategy can pick the first labels.

    Examples
    --------
    >>> from skal_cxr.strategies import max_entropy, schedule, typicality
    >>> strategy = schedule([(typicality, 40), (max_entropy, None)])
    >>> strategy.__name__
    'typicality>max_entropy@40'
    >>> strategy.stage(39).__name__, strategy.stage(40).__name__
    ('typicality', 'max_entropy')
    """
    stages = list(stages)
    if not stages:
        raise ValueError("schedule needs at least one (strategy, until) stage.")
    previous = -1
    for k, (strategy, until) in enumerate(stages):
        if not callable(strategy):
            raise TypeError(f"stage {k} of the schedule is not a callable strategy.")
        if until is None and k != len(stages) - 1:
            raise ValueError("only the last stage of a schedule may have until=None.")
        if until is not None:
            until = check_int(until, f"until of stage {k}", min_val=0, error=ValueError)
            if until <= previous:
                raise ValueError("the until values of a schedule must increase.")
            previous = until

    def stage(n_labeled):
        for strategy, until in stages:
            if until is None or n_labeled < until:
                return strategy
        raise ValueError(
            f"the schedule has no stage for {n_labeled} labels; end it with until=None."
        )

    def scheduled(
        learner,
        X_pool,
        n_instances=1,
        *,
        pool_size=None,
        n_mc_samples=None,
        random_state=None,
        X_labeled=None,
        **kwargs,
    ):
        labeled = labeled_images(learner, X_labeled)
        strategy = stage(0 if labeled is None else len(labeled))
        kwargs.update(pool_size=pool_size, n_mc_samples=n_mc_samples, random_state=random_state)
        return call_stage(strategy, learner, X_pool, n_instances, X_labeled, kwargs)

    names = [getattr(s, "__name__", "strategy") for s, _ in stages]
    thresholds = [u for _, u in stages[:-1]]
    name = names[0] + "".join(f">{n}@{u}" for n, u in zip(names[1:], thresholds))
    if stages[-1][1] is not None:
        name += f"@{stages[-1][1]}"
    scheduled.__name__ = scheduled.__qualname__ = name
    scheduled.__doc__ = strategy_doc(
        f"Scheduled query strategy {name} (see :func:`skal_cxr.strategies.schedule`).\n",
        """    X_labeled : array-like of shape (n_labeled, ...) or None, default=None
        The images labeled so far; ``None`` takes the learner's ``X_training``.
        Their number chooses the stage.
    **kwargs : dict
        Passed to the stage's strategy when it accepts them.
""",
        scores="The stage strategy's score of each queried image.",
    )
    scheduled.stage = stage
    scheduled.stages = tuple(stages)
    scheduled.label_free = lambda n_labeled=0: is_label_free(stage(n_labeled), n_labeled)
    return scheduled

"""The active-learning round, written once: fit on the labeled set, query the next batch.

Every user runs its rounds through :class:`ActiveLoop`, with the source of
labels (the *oracle*) passed in, like baal's ``ActiveLearningLoop``:

- :func:`skal_cxr.simulation.simulate` answers from the pool's known labels
  and steps until the budget is spent;
- a labeling project (:mod:`skal_cxr.labeling`) answers from its database:
  its labels arrive asynchronously, so its worker process runs one
  :meth:`ActiveLoop.step` with the labels it has, and the reserve is one more
  :meth:`ActiveLoop.query` of the same model;
- the benchmarks answer from known labels, with their own learner.

The *next-batch rule* is :func:`query_round`: which images a fitted learner
asks for next. The learner is made by :func:`make_learner` from a
:class:`~skal_cxr.engine.RoundConfig` (its estimator by
:func:`~skal_cxr.engine.build_estimator`), so another estimator slots in
through the configuration alone.
"""

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._lazy import take_rows
from .._pipeline import final_estimator
from ..exceptions import SimulationInterrupted
from ._rounds import _round_config, build_estimator

__all__ = ["ActiveLoop", "RoundResult", "make_learner", "query_round", "timed_fit"]


@dataclass(frozen=True)
class RoundResult:
    """What one round of :class:`ActiveLoop` did.

    Parameters
    ----------
    round : int
        The round (0: the fit on the initial labeled set).
    n_labeled : int
        Images the round's model was fitted on.
    labeled : tuple of int
        Their pool positions, in the order they were labeled.
    queried : tuple of int
        Pool positions of the next batch, most informative first (empty
        when nothing was queried).
    scores : tuple of float or None
        The strategy's score of each queried image, when it gives them.
    fit_time : float or None
        Seconds the fit took (None when the round fitted nothing).
    query_time : float or None
        Seconds the query took (None when nothing was queried).
    n_epochs : int or None
        Epochs of the fit (the estimator's ``n_epochs_``), when it has them.
    evaluation : object, default=None
        What the round's ``evaluate`` callable returned.
    """

    round: int
    n_labeled: int
    labeled: tuple
    queried: tuple
    scores: tuple | None
    fit_time: float | None
    query_time: float | None
    n_epochs: int | None
    evaluation: Any = None


def make_learner(config, n_classes, estimator=None, random_state=None, X_pool=None):
    """The :class:`~skal_cxr.ActiveLearner` of a round configuration.

    Parameters
    ----------
    config : RoundConfig or mapping
        Its ``strategy`` names the query strategy.
    n_classes : int
        Number of classes.
    estimator : estimator or None, default=None
        Unfitted; ``None`` builds the configuration's
        (:func:`~skal_cxr.engine.build_estimator`).
    random_state : int or None, default=None
        The learner's ``random_state`` (queries given no seed of their own).
    X_pool : array-like or None, default=None
        The whole pool, whose encoder a ``model="view"`` configuration
        trains once (:func:`~skal_cxr.engine.pool_view`).

    Returns
    -------
    learner : ActiveLearner
        Unfitted.
    """
    from ..learner import ActiveLearner
    from ..strategies import STRATEGIES

    config = _round_config(config)
    if estimator is None:
        estimator = build_estimator(config, n_classes, X_pool=X_pool)
    return ActiveLearner(
        estimator, query_strategy=STRATEGIES[config.strategy], random_state=random_state
    )


def query_round(learner, X, labeled, n_instances, config, random_state):
    """The next-batch rule: ``n_instances`` pool positions not in ``labeled``.

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
    config : RoundConfig or mapping or None
        The round configuration; ``None``: the strategy's own defaults.
    random_state : int or None
        Seeds the query; ``None``: the learner's per-round stream.

    Returns
    -------
    queried : list of int
        Positions in ``X``, most informative first.
    scores : list of float or None
        The strategy's scores of the queried images, when it returns them.
    query_time : float
        Seconds.
    """
    params = {}
    if config is not None:
        config = _round_config(config)
        params = {"n_mc_samples": config.n_mc_samples, "pool_size": config.pool_size}
    if random_state is not None:
        params["random_state"] = random_state
    unlabeled = np.setdiff1d(np.arange(len(X)), np.asarray(labeled, dtype=np.int64))
    t0 = time.perf_counter()
    idx, _, scores = learner.query(
        take_rows(X, unlabeled), n_instances, return_metrics=True, **params
    )
    query_time = time.perf_counter() - t0
    queried = unlabeled[np.asarray(idx, dtype=np.int64)].tolist()
    if scores is not None:
        scores = np.asarray(scores, dtype=float).ravel()
        scores = scores.tolist() if len(scores) == len(queried) else None
    return queried, scores, query_time


@contextmanager
def _sigint_flag():
    """Record any SIGINT that arrives while the block runs.

    skorch ends training quietly on Ctrl-C, even inside the last epoch, where
    the epoch count cannot show it; the flag can. Only the main thread may
    install signal handlers; elsewhere the flag stays empty.
    """
    flag = []
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:  # the caller chose to ignore Ctrl-C (nohup)
        yield flag
        return

    def handler(signum, frame):
        flag.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def timed_fit(fit, estimator_of, epochs_before=0):
    """Run ``fit()``; check it ran every epoch; return (seconds, epochs, history length).

    The epochs a fit must run are the estimator's own ``n_epochs_`` (its
    epochs-per-fit rule applied to the training set it saw, after any
    sampler). An estimator without ``history`` and ``n_epochs_`` is not
    checked (``(seconds, None, None)``).

    Parameters
    ----------
    fit : callable
        Fits the estimator.
    estimator_of : callable
        Returns the fitted estimator, after ``fit()``.
    epochs_before : int, default=0
        Length of the estimator's history before this fit (warm start).

    Returns
    -------
    seconds : float
    n_epochs : int or None
    history : int or None

    Raises
    ------
    SimulationInterrupted
        When the fit stopped before its last epoch (Ctrl-C, which skorch
        swallows).
    """
    t0 = time.perf_counter()
    with _sigint_flag() as interrupted:
        fit()
    elapsed = time.perf_counter() - t0
    est = estimator_of()
    n_epochs, history = getattr(est, "n_epochs_", None), getattr(est, "history", None)
    if n_epochs is None or history is None:
        if interrupted:
            raise SimulationInterrupted("training was interrupted; rerun the same command.")
        return elapsed, None, None
    history = len(history)
    if interrupted or history - epochs_before != n_epochs:
        raise SimulationInterrupted(
            f"training stopped after {history - epochs_before} of {n_epochs} epochs "
            "(interrupted); rerun the same command to resume."
        )
    return elapsed, int(n_epochs), history


class ActiveLoop:
    """Active learning: fit on the labeled set, query the next batch, ask the oracle.

    Round ``r`` (:meth:`step`) fits the learner on the labeled set (the
    first round on all of it; later rounds teach the batch the previous
    round queried, labeled by ``oracle``: a fresh fit on the whole labeled
    set, unless the estimator warm-starts), lets ``evaluate`` look at the
    fitted learner, then queries the next batch (:func:`query_round`).

    Parameters
    ----------
    config : RoundConfig or mapping
        The round configuration: strategy, estimator, query settings.
    X : array-like of shape (n_images, ...)
        Every image, labeled or not.
    oracle : callable or None
        ``oracle(indices) -> labels`` for an array of pool positions (known
        labels, or a project's consensus); ``None`` for a loop that only
        queries a fitted ``learner``.
    labeled : sequence of int
        Pool positions labeled at the start, in the order they were labeled.
    n_classes : int or None, default=None
        Number of classes of the estimator built from ``config``.
    estimator : estimator or None, default=None
        Unfitted estimator instead of the configuration's.
    learner : ActiveLearner or None, default=None
        A learner instead of :func:`make_learner`'s (fitted: nothing is
        refitted until the oracle labels a queried batch).
    exclude : sequence of int, default=()
        Positions never queried besides the labeled ones (a project's
        images queued but not labeled yet).

    Attributes
    ----------
    learner : ActiveLearner
        The learner.
    labeled : list of int
        Positions labeled so far (the images the next fit sees).
    round : int
        Rounds stepped so far.
    """

    def __init__(
        self,
        config,
        X,
        oracle,
        labeled,
        *,
        n_classes=None,
        estimator=None,
        learner=None,
        exclude=(),
    ):
        self.config = _round_config(config) if config is not None else None
        self.X = X
        self.oracle = oracle
        self.labeled = [int(i) for i in labeled]
        self.exclude = [int(i) for i in exclude]
        self.learner = (
            learner
            if learner is not None
            else make_learner(self.config, n_classes, estimator, X_pool=X)
        )
        fitted = hasattr(self.learner, "estimator_")
        self._pending = [] if fitted else list(self.labeled)
        self.round = 0

    @property
    def _warm(self):
        """Whether a fit continues the previous weights (the estimator's ``warm_start``)."""
        return bool(getattr(final_estimator(self.learner.estimator), "warm_start", False))

    def _labels(self, indices):
        return np.asarray(self.oracle(np.asarray(indices, dtype=np.int64)))

    def fit(self):
        """Fit on the images labeled since the last fit (all of them the first time).

        Returns
        -------
        fit_time : float or None
            Seconds (None when there was nothing to fit).
        n_epochs : int or None
            Epochs of the fit, when the estimator counts them.

        Raises
        ------
        SimulationInterrupted
            When the fit stopped before its last epoch (Ctrl-C, which skorch
            swallows): nothing of the round is kept.
        """
        if not self._pending:
            return None, None
        batch, learner = self._pending, self.learner
        first = not hasattr(learner, "estimator_")
        before = 0
        if not first and self._warm:
            before = len(getattr(learner.estimator_, "history", ()))
        labels = self._labels(batch)
        fit = learner.fit if first else learner.teach
        fit_time, n_epochs, _ = timed_fit(
            lambda: fit(self.X[batch], labels), lambda: learner.estimator_, before
        )
        if not first:
            self.labeled.extend(batch)
        self._pending = []
        return fit_time, n_epochs

    def resume(self, batches):
        """Continue a loop whose earlier rounds queried ``batches`` (all labeled now).

        Without warm start the next fit is a fresh fit on everything; with
        it, the earlier fits are replayed (fits only) so that the weights
        are those the uninterrupted loop would have.

        Parameters
        ----------
        batches : list of list of int
            The queried positions of each earlier round, in order.
        """
        for batch in batches:
            if self._warm:
                self.fit()
                self._pending = [int(i) for i in batch]
                self.round += 1
            else:
                self.labeled.extend(int(i) for i in batch)
                self._pending = list(self.labeled)
                self.round += 1

    def query(self, n_instances, random_state=None, exclude=None):
        """The next batch of the fitted learner (:func:`query_round`); label it later.

        Parameters
        ----------
        n_instances : int
            Images to query.
        random_state : int or None, default=None
            Seeds the query; ``None``: the learner's per-round stream.
        exclude : sequence of int or None, default=None
            Positions not to query; ``None``: the labeled and excluded ones.

        Returns
        -------
        queried : list of int
            Pool positions, most informative first.
        scores : list of float or None
            Their scores, when the strategy gives them.
        query_time : float
            Seconds.
        """
        if exclude is None:
            exclude = sorted(set(self.labeled) | set(self.exclude) | set(self._pending))
        return query_round(
            self.learner, self.X, list(exclude), int(n_instances), self.config, random_state
        )

    def step(self, n_query, random_state=None, evaluate=None):
        """One round: fit, evaluate, query ``n_query`` images for the oracle to label.

        Parameters
        ----------
        n_query : int
            Images to query (0: the last round, nothing queried).
        random_state : int or None, default=None
            Seeds the query (see :func:`~skal_cxr._random.round_seed`).
        evaluate : callable or None, default=None
            ``evaluate(learner)`` after the fit; its value is the result's
            ``evaluation``.

        Returns
        -------
        result : RoundResult
            The round.
        """
        fit_time, n_epochs = self.fit()
        labeled = tuple(self.labeled)
        evaluation = None if evaluate is None else evaluate(self.learner)
        queried, scores, query_time = [], None, None
        if n_query > 0:
            queried, scores, query_time = self.query(n_query, random_state)
            self._pending = list(queried)
        result = RoundResult(
            round=self.round,
            n_labeled=len(labeled),
            labeled=labeled,
            queried=tuple(int(q) for q in queried),
            scores=None if scores is None else tuple(float(s) for s in scores),
            fit_time=fit_time,
            query_time=query_time,
            n_epochs=n_epochs,
            evaluation=evaluation,
        )
        self.round += 1
        return result

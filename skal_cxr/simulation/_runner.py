"""Running active-learning runs and full-data baselines, one record per round.

A *run* is one (strategy, seed) pair: a stratified initial labeled set,
then rounds of fit, evaluate, query until the labeling budget is spent. A
*baseline* is the same estimator trained on the whole pool. Each finished
round is appended to the run's record file at once (see ``_records``).

Determinism and resume
----------------------
Everything random in a run is seeded from its seed: the initial labeled set
(``seed``), the estimator (``random_state=seed``: weight initialisation,
shuffling, dropout masks, Monte Carlo masks) and each round's query
(``SeedSequence([seed, round])``). Training starts from scratch every round
(unless ``warm_start``), so the model of round ``r`` is a function of the
labeled set of round ``r`` only, in the order it was acquired. A restarted run
therefore rebuilds the labeled set from the initial set plus the ``queried``
indices of its recorded rounds and continues with the first missing round.
With ``warm_start`` the recorded rounds are replayed (fits only, no
evaluation or query) to rebuild the warm-started weights first.
"""

import os
import signal
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .._lazy import take_rows
from ..metrics import classification_metrics, fit_operating_point
from .._random import round_seed
from ..callbacks import CosineAnnealing
from ..models import MCDropoutCNN
from .._results import (
    RecordWriter, ResultsDirError, owner_alive, read_record_file, record_path,
)

__all__ = [
    "SimulationInterrupted", "round_schedule", "initial_indices",
    "build_estimator", "run_active", "run_baseline", "run_task", "round_seed", "query_round",
]


class SimulationInterrupted(RuntimeError):
    """The simulation stopped early: Ctrl-C (which skorch swallows), SIGTERM, or its end.

    Parameters
    ----------
    message : str
        What stopped, and how to resume.
    signum : int or None, default=None
        The signal that stopped it, when one did (kept as ``signum``).
    """

    def __init__(self, message, signum=None):
        super().__init__(message)
        self.signum = signum


def round_schedule(n_pool, n_initial, query_size, budget):
    """Labeled-set size of every round.

    Parameters
    ----------
    n_pool : int
    n_initial, query_size : int
    budget : int or float
        Labeled images at the end (initial set included): a count, or a
        fraction in ``(0, 1]`` of the pool. A count larger than ``n_pool``
        is an error (no silently shortened run).

    Returns
    -------
    sizes : list of int
        ``n_initial, n_initial + query_size, ...``, ending exactly at the
        budget (the last query may be smaller).

    Examples
    --------
    >>> from skal_cxr.simulation import round_schedule
    >>> round_schedule(1000, 40, 40, 150)
    [40, 80, 120, 150]
    >>> round_schedule(1000, 40, 40, 0.1)
    [40, 80, 100]
    """
    from ._config import ConfigError

    if isinstance(budget, float) and budget <= 1:
        total = int(round(budget * n_pool))
    else:
        total = int(budget)
        if total > n_pool:
            raise ConfigError(
                f"the budget ({total} images) is larger than the pool ({n_pool} images); "
                f"give at most {n_pool}, or a fraction such as 0.2."
            )
    total = min(total, n_pool)
    if n_initial > n_pool:
        raise ConfigError(f"n_initial ({n_initial}) is larger than the pool ({n_pool} images).")
    if total < n_initial:
        raise ConfigError(
            f"the budget ({total} images) is smaller than the initial set ({n_initial})."
        )
    return list(range(n_initial, total, query_size)) + [total]


def initial_indices(y_pool, n_initial, seed, stratify=True):
    """The initial labeled set: ``n_initial`` pool positions, stratified by class.

    Falls back to a plain random draw when a class is too rare to stratify,
    or with ``stratify=False`` (a cold start without labels, as in a
    labeling project). The same seed gives every strategy the same initial
    set (paired runs).

    Returns
    -------
    indices : ndarray of shape (n_initial,), sorted
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


def build_estimator(config, n_classes, seed):
    """The :class:`~skal_cxr.MCDropoutCNN` of a run, seeded with ``seed``."""
    est = dict(config["estimator"])
    training = config["training"]
    callbacks = []
    if training["lr_schedule"] == "cosine":
        callbacks.append(("cosine_annealing", CosineAnnealing()))
    return MCDropoutCNN(
        classes=np.arange(n_classes),
        class_weight=config["class_weight"],
        sampler=config.get("sampler"),
        n_mc_samples=config["n_mc_samples"],
        warm_start=config["warm_start"],
        random_state=seed,
        max_epochs=training["max_epochs"],
        min_train_steps=training["min_train_steps"],
        callbacks=callbacks,
        **est,
    )


def _evaluate(predict_proba, data):
    """Test metrics (plus operating point fitted on validation) of a model."""
    op = None
    if data.y_val is not None:
        op = fit_operating_point(data.y_val, predict_proba(data.X_val))
    metrics = classification_metrics(
        data.y_test, predict_proba(data.X_test), class_names=data.class_names,
        operating_point=op,
    )
    return metrics, (None if op is None else [float(w) for w in op])


def _counts(y, n_classes):
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).tolist()


@contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


def _timed_fit(fit, estimator_of, epochs_before):
    """Run ``fit()``; check it ran every epoch; return (seconds, epochs, history length).

    The epochs a fit must run are the estimator's own ``n_epochs_`` (its
    epochs-per-fit rule applied to the training set it saw, after any sampler).
    """
    t0 = time.perf_counter()
    with _sigint_flag() as interrupted:
        fit()
    elapsed = time.perf_counter() - t0
    n_epochs = estimator_of().n_epochs_
    history = len(estimator_of().history)
    if interrupted or history - epochs_before != n_epochs:
        raise SimulationInterrupted(
            f"training stopped after {history - epochs_before} of {n_epochs} epochs "
            "(interrupted); rerun the same command to resume."
        )
    return elapsed, n_epochs, history


def _check_recorded(records, schedule, path):
    for r, rec in enumerate(records):
        if rec.get("round") != r or (r < len(schedule) and rec.get("n_labeled") != schedule[r]):
            raise ResultsDirError(
                f"{path} does not match this configuration (round {r}); "
                "use another output folder or overwrite."
            )
    if len(records) > len(schedule):
        raise ResultsDirError(f"{path} holds more rounds than this configuration plans.")


def query_round(learner, X, labeled, n_instances, config, random_state):
    """One round's query: ``n_instances`` pool positions not in ``labeled``.

    The pool is every position of ``X`` not in ``labeled``, in increasing
    order; the strategy sees it with the configuration's ``n_mc_samples`` and
    ``pool_size``.

    Returns
    -------
    queried : list of int
        Positions in ``X``, most informative first.
    scores : list of float or None
        The strategy's scores of the queried images, when it returns them.
    query_time : float
        Seconds.
    """
    unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
    t0 = time.perf_counter()
    idx, _, scores = learner.query(
        take_rows(X, unlabeled), n_instances, return_metrics=True,
        n_mc_samples=config["n_mc_samples"], pool_size=config["pool_size"],
        random_state=random_state,
    )
    query_time = time.perf_counter() - t0
    queried = unlabeled[np.asarray(idx, dtype=np.int64)].tolist()
    if scores is not None:
        scores = np.asarray(scores, dtype=float).ravel()
        scores = scores.tolist() if len(scores) == len(queried) else None
    return queried, scores, query_time


def run_active(data, config, strategy, seed, schedule, results_dir, check=None):
    """Run (or resume) one active-learning run, writing a record per round.

    Parameters
    ----------
    data : SimulationData
    config : dict
        Resolved configuration.
    strategy : str
        Key of :data:`skal_cxr.strategies.STRATEGIES`.
    seed : int
    schedule : list of int
        Labeled-set size of each round (:func:`round_schedule`).
    results_dir : path-like
    check : callable, default=None
        Called before each record is written (see :class:`RecordWriter`).

    Returns
    -------
    n_new : int
        Rounds run now (0 when the run was already complete).
    """
    from ..learner import ActiveLearner
    from ..strategies import STRATEGIES

    path = record_path(results_dir, "active", strategy, seed)
    done = read_record_file(path)
    _check_recorded(done, schedule, path)
    start = len(done)
    if start == len(schedule):
        return 0
    X, y = data.X_pool, data.y_pool
    n_pool, n_classes = len(y), len(data.class_names)
    initial = initial_indices(y, config["n_initial"], seed,
                              stratify=config["initial"] == "stratified")
    labeled = initial.tolist()
    for rec in done:
        labeled.extend(rec["queried"])

    with _torch_threads(config["torch_threads"]):
        learner = ActiveLearner(
            build_estimator(config, n_classes, seed), query_strategy=STRATEGIES[strategy]
        )
        est = lambda: learner.estimator_  # noqa: E731
        if config["warm_start"] and start:
            # Warm-started weights depend on every earlier fit: replay them.
            idx = initial.tolist()
            _, _, hist = _timed_fit(lambda: learner.fit(X[idx], y[idx]), est, 0)
            for rec in done:
                q = rec["queried"]
                idx = idx + q
                fit_time, n_epochs, hist = _timed_fit(
                    lambda: learner.teach(X[q], y[q]), est, hist
                )
        else:
            fit_time, n_epochs, hist = _timed_fit(
                lambda: learner.fit(X[labeled], y[labeled]), est, 0
            )
        with RecordWriter(path, check) as writer:
            for r in range(start, len(schedule)):
                t0 = time.perf_counter()
                metrics, op = _evaluate(learner.predict_proba, data)
                eval_time = time.perf_counter() - t0
                queried, query_time = [], 0.0
                if r + 1 < len(schedule):
                    queried, _, query_time = query_round(
                        learner, X, labeled, schedule[r + 1] - schedule[r], config,
                        round_seed(seed, r),
                    )
                writer.write({
                    "kind": "active", "strategy": strategy, "seed": seed, "round": r,
                    "n_labeled": len(labeled), "frac_labeled": len(labeled) / n_pool,
                    "class_counts": _counts(y[labeled], n_classes),
                    "queried": queried, "queried_counts": _counts(y[queried], n_classes),
                    "n_epochs": n_epochs, "fit_time": fit_time, "query_time": query_time,
                    "eval_time": eval_time, "operating_point": op, "metrics": metrics,
                })
                if queried:
                    labeled.extend(queried)
                    if not config["warm_start"]:
                        hist = 0
                    fit_time, n_epochs, hist = _timed_fit(
                        lambda: learner.teach(X[queried], y[queried]), est, hist
                    )
    return len(schedule) - start


def run_baseline(data, config, seed, results_dir, check=None):
    """Train on the whole pool and write one ``baseline`` record (if missing).

    Returns
    -------
    n_new : int
        1 if the baseline ran now, 0 if it was already recorded.
    """
    path = record_path(results_dir, "baseline", None, seed)
    if read_record_file(path):
        return 0
    X, y = data.X_pool, data.y_pool
    n_classes = len(data.class_names)
    with _torch_threads(config["torch_threads"]):
        est = build_estimator(config, n_classes, seed)
        fit_time, n_epochs, _ = _timed_fit(lambda: est.fit(X, y), lambda: est, 0)
        t0 = time.perf_counter()
        metrics, op = _evaluate(est.predict_proba, data)
        eval_time = time.perf_counter() - t0
    with RecordWriter(path, check) as writer:
        writer.write({
            "kind": "baseline", "strategy": "full_data", "seed": seed, "round": 0,
            "n_labeled": len(y), "frac_labeled": 1.0, "class_counts": _counts(y, n_classes),
            "n_epochs": n_epochs, "fit_time": fit_time, "query_time": 0.0,
            "eval_time": eval_time, "operating_point": op, "metrics": metrics,
        })
    return 1


def run_task(task, data, config, schedule, results_dir, owner=None):
    """Run one task ``("active", strategy, seed)`` or ``("baseline", None, seed)``.

    ``owner`` is ``(token, exit_process)`` when the task runs in a worker
    of the simulation that holds the folder's lock with ``token``: the
    worker stops as soon as that simulation has ended, by ending its process
    (``exit_process``, a worker process of this machine) or by refusing its
    next write (a Dask worker, shared with other work).
    """
    kind, strategy, seed = task
    with _owner_watch(results_dir, owner) as check:
        if kind == "baseline":
            return run_baseline(data, config, seed, results_dir, check)
        return run_active(data, config, strategy, seed, schedule, results_dir, check)


_PARENT_PID = []


def _exit_with_parent(interval=0.5):
    """End this worker process as soon as its parent has gone, busy or idle.

    A pool worker idling between tasks would otherwise live on (and hold
    the parent's output pipes open) after the parent was killed.
    """
    if _PARENT_PID:
        return
    _PARENT_PID.append(os.getppid())

    def watch():
        while os.getppid() == _PARENT_PID[0]:
            time.sleep(interval)
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="skal-cxr-parent-watch").start()


@contextmanager
def _owner_watch(results_dir, owner, interval=0.5):
    """Stop this worker when the simulation it works for has ended (never outlive it)."""
    if owner is None:
        yield None
        return
    token, exit_process = owner
    stop = threading.Event()

    def check():
        if not owner_alive(results_dir, token):
            raise SimulationInterrupted(
                "the simulation this worker ran for has ended; its rounds are not written."
            )

    def watch():
        while not stop.wait(interval):
            if not owner_alive(results_dir, token):
                if exit_process:
                    os._exit(70)  # records are whole lines: nothing is left half-written
                return

    check()
    if exit_process:
        _exit_with_parent()
    thread = threading.Thread(target=watch, daemon=True, name="skal-cxr-owner-watch")
    thread.start()
    try:
        yield check
    finally:
        stop.set()

"""Running active-learning runs and full-data baselines, one record per round.

A *run* is one (strategy, seed) pair, an *arm* (``"random@cnn"`` names the
model too): an initial labeled set chosen without labels, then rounds of
fit, evaluate, query until the labeling budget is spent. A *baseline* is
each model of the arms trained on the whole pool; its record's metrics are
the better one's (the full-data reference). With the ``"view"`` model the
pool's encoder is trained once per simulation, without labels, by its own
task (``("view", None, None)``) and kept in the results folder
(:func:`skal_cxr.engine.pool_view`). Each finished round is appended to the
run's record file at once (see ``_records``).

Determinism and resume
----------------------
Everything random in a run is seeded from its seed: the initial labeled set
(``seed``), the estimator (``random_state=seed``: weight initialisation,
shuffling, dropout masks, Monte Carlo masks) and each round's query
(:func:`skal_cxr._random.round_seed`). The rounds themselves are the
engine's (:class:`skal_cxr.engine.ActiveLoop`), answered from the pool's
known labels. Training starts from scratch every round
(unless ``warm_start``), so the model of round ``r`` is a function of the
labeled set of round ``r`` only, in the order it was acquired. A restarted run
therefore rebuilds the labeled set from the initial set plus the ``queried``
indices of its recorded rounds and continues with the first missing round
(:meth:`~skal_cxr.engine.ActiveLoop.resume`). With ``warm_start`` the
recorded rounds are replayed (fits only, no evaluation or query) to rebuild
the warm-started weights first.
"""

import os
import threading
import time
from contextlib import contextmanager

import numpy as np

from .._lazy import take_rows
from .._random import round_seed
from .._reaper import exit_with_parent
from .._results import RecordWriter, owner_alive, read_record_file, record_path
from ..engine import (
    ActiveLoop,
    RoundConfig,
    build_estimator,
    initial_set,
    pool_view,
    torch_threads,
)
from ..engine._loop import timed_fit as _timed_fit
from ..exceptions import ConfigError, ResultsDirError, SimulationInterrupted
from ..metrics import classification_metrics, fit_operating_point
from ._config import arm_models, split_arm

__all__ = [
    "SimulationInterrupted",
    "round_schedule",
    "run_active",
    "run_baseline",
    "run_task",
    "train_view",
]


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


def _evaluate(predict_proba, data, calibrate=None):
    """Test metrics (plus operating point fitted on validation) of a model.

    With ``calibrate`` (a callable ``(val_proba, test_proba) -> dict``),
    also returns what it says of the model's calibration.
    """
    op = val = None
    if data.y_val is not None:
        val = predict_proba(data.X_val)
        op = fit_operating_point(data.y_val, val)
    test = predict_proba(data.X_test)
    metrics = classification_metrics(
        data.y_test,
        test,
        class_names=data.class_names,
        operating_point=op,
    )
    op = None if op is None else [float(w) for w in op]
    if calibrate is None:
        return metrics, op
    return metrics, op, calibrate(val, test)


def _calibration(data, pool_proba, train_prior, val, test):
    """ECE of the test probabilities, raw and after two corrections.

    ``ece_val_corrected``: temperature and class prior fitted on the
    validation split (:class:`~skal_cxr.calibration.PriorCorrection`).
    ``ece_em_prior``: moved to the class prior of the unlabeled pool
    re-estimated by EM, without any label
    (:class:`~skal_cxr.calibration.EMPriorCorrection`); ``em_prior`` is that
    estimate. The test split is never fitted on.
    """
    from ..calibration import EMPriorCorrection, PriorCorrection
    from ..metrics import expected_calibration_error

    y = data.y_test
    out = {"ece": float(expected_calibration_error(y, test))}
    if val is not None and len(np.unique(data.y_val)) > 1:
        corrected = PriorCorrection().fit(val, data.y_val).transform(test)
        out["ece_val_corrected"] = float(expected_calibration_error(y, corrected))
    if pool_proba is not None and len(pool_proba):
        em = EMPriorCorrection(train_prior=train_prior).fit(pool_proba)
        out["ece_em_prior"] = float(expected_calibration_error(y, em.transform(test)))
        out["em_prior"] = [float(p) for p in em.prior_]
    return out


def _train_prior(config, y_labeled, n_classes):
    """The class prior a fit trained under: uniform with balanced weights, else the labels'."""
    if config.class_weight == "balanced":
        return None
    counts = np.bincount(np.asarray(y_labeled, dtype=np.int64), minlength=n_classes) + 0.5
    return counts / counts.sum()


def _counts(y, n_classes):
    return np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).tolist()


def _check_recorded(records, schedule, path):
    for r, rec in enumerate(records):
        if rec.get("round") != r or (r < len(schedule) and rec.get("n_labeled") != schedule[r]):
            raise ResultsDirError(
                f"{path} does not match this configuration (round {r}); "
                "use another output folder or overwrite."
            )
    if len(records) > len(schedule):
        raise ResultsDirError(f"{path} holds more rounds than this configuration plans.")


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
    path = record_path(results_dir, "active", strategy, seed)
    done = read_record_file(path)
    _check_recorded(done, schedule, path)
    start = len(done)
    if start == len(schedule):
        return 0
    X, y = data.X_pool, data.y_pool
    n_pool, n_classes = len(y), len(data.class_names)
    name, model = split_arm(strategy, config)
    rounds = RoundConfig.from_dict(config, strategy=name, seed=seed, model=model)
    estimator = None  # the CNN: the loop builds it
    if model == "view":
        with torch_threads(rounds.torch_threads):
            estimator = build_estimator(rounds, n_classes, X_pool=X, cache_dir=results_dir)
    initial = initial_set(
        config.get("initial", "random"),
        config["n_initial"],
        seed,
        y_pool=y,
        X_pool=X,
        strategy=name,
        estimator=estimator,  # a label-free strategy picks in the pool's view
    )

    last = len(schedule) - 1

    def evaluate(learner):
        t0 = time.perf_counter()
        if loop.round != last:  # the round being evaluated (ActiveLoop counts from 0)
            metrics, op = _evaluate(learner.predict_proba, data)
            return metrics, op, None, time.perf_counter() - t0
        # the last round: its calibration, raw and corrected (never fitted on the test set)
        unlabeled = np.setdiff1d(np.arange(n_pool), loop.labeled)
        pool_proba = learner.predict_proba(take_rows(X, unlabeled)) if len(unlabeled) else None
        prior = _train_prior(rounds, y[loop.labeled], n_classes)
        metrics, op, calibration = _evaluate(
            learner.predict_proba,
            data,
            lambda val, test: _calibration(data, pool_proba, prior, val, test),
        )
        return metrics, op, calibration, time.perf_counter() - t0

    with torch_threads(rounds.torch_threads):
        loop = ActiveLoop(
            rounds, X, lambda idx: y[idx], initial, n_classes=n_classes, estimator=estimator
        )
        loop.resume([rec["queried"] for rec in done])
        with RecordWriter(path, check) as writer:
            for r in range(start, len(schedule)):
                n_query = schedule[r + 1] - schedule[r] if r + 1 < len(schedule) else 0
                result = loop.step(n_query, round_seed(seed, r), evaluate=evaluate)
                metrics, op, calibration, eval_time = result.evaluation
                labeled, queried = list(result.labeled), list(result.queried)
                record = {
                    "kind": "active",
                    "strategy": strategy,
                    "seed": seed,
                    "round": r,
                    "n_labeled": len(labeled),
                    "frac_labeled": len(labeled) / n_pool,
                    "class_counts": _counts(y[labeled], n_classes),
                    "queried": queried,
                    "queried_counts": _counts(y[queried], n_classes),
                    "n_epochs": result.n_epochs,
                    "fit_time": result.fit_time,
                    "query_time": result.query_time or 0.0,
                    "eval_time": eval_time,
                    "operating_point": op,
                    "metrics": metrics,
                }
                if calibration is not None:
                    record["calibration"] = calibration
                writer.write(record)
    return len(schedule) - start


def _best(results):
    """The model whose full-data fit is the reference: the higher AUROC (else the first)."""
    scores = {m: r["metrics"].get("auroc") for m, r in results.items()}
    if any(v is None for v in scores.values()):
        return next(iter(results))
    return max(scores, key=lambda m: scores[m])


def run_baseline(data, config, seed, results_dir, check=None):
    """Train each model of the arms on the whole pool; write one ``baseline`` record.

    The record's metrics are those of the better model (by test AUROC): the
    full-data reference of the seed. With more than one model, ``models``
    holds each one's metrics and times and ``model`` names the better one.

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
    results = {}
    for model in arm_models(config):
        rounds = RoundConfig.from_dict(config, seed=seed, model=model)
        with torch_threads(rounds.torch_threads):
            est = build_estimator(rounds, n_classes, X_pool=X, cache_dir=results_dir)
            fit_time, n_epochs, _ = _timed_fit(
                lambda est=est: est.fit(X, y), lambda est=est: est, 0
            )
            t0 = time.perf_counter()
            metrics, op = _evaluate(est.predict_proba, data)
            results[model] = {
                "n_epochs": n_epochs,
                "fit_time": fit_time,
                "eval_time": time.perf_counter() - t0,
                "operating_point": op,
                "metrics": metrics,
            }
    best = _best(results)
    record = {
        "kind": "baseline",
        "strategy": "full_data",
        "seed": seed,
        "round": 0,
        "n_labeled": len(y),
        "frac_labeled": 1.0,
        "class_counts": _counts(y, n_classes),
        "n_epochs": results[best]["n_epochs"],
        "fit_time": sum(r["fit_time"] for r in results.values()),
        "query_time": 0.0,
        "eval_time": sum(r["eval_time"] for r in results.values()),
        "operating_point": results[best]["operating_point"],
        "metrics": results[best]["metrics"],
    }
    if len(results) > 1:
        record.update(model=best, models=results)
    with RecordWriter(path, check) as writer:
        writer.write(record)
    return 1


def train_view(data, config, results_dir):
    """Train the pool's encoder (once: kept in ``results_dir``), without labels.

    Returns
    -------
    n_new : int
        0 (it writes no record).
    """
    rounds = RoundConfig.from_dict(config, model="view")
    with torch_threads(rounds.torch_threads):
        pool_view(data.X_pool, rounds, cache_dir=results_dir, progress=False)
    return 0


def run_task(task, data, config, schedule, results_dir, owner=None):
    """Run one task: ``("active", arm, seed)``, ``("baseline", None, seed)`` or the view.

    The view's task, ``("view", None, None)``, trains the pool's encoder
    (:func:`train_view`).

    ``owner`` is ``(token, exit_process)`` when the task runs in a worker
    of the simulation that holds the folder's lock with ``token``: the
    worker stops as soon as that simulation has ended, by ending its process
    (``exit_process``, a worker process of this machine) or by refusing its
    next write (a Dask worker, shared with other work).
    """
    kind, strategy, seed = task
    with _owner_watch(results_dir, owner) as check:
        if kind == "view":
            return train_view(data, config, results_dir)
        if kind == "baseline":
            return run_baseline(data, config, seed, results_dir, check)
        return run_active(data, config, strategy, seed, schedule, results_dir, check)


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
        exit_with_parent()
    thread = threading.Thread(target=watch, daemon=True, name="skal-cxr-owner-watch")
    thread.start()
    try:
        yield check
    finally:
        stop.set()

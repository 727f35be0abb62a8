"""Training rounds in a child process, at a lower priority than the web server.

A served project trains and scores in one long-lived worker process
(:class:`TrainerProcess`), started with the ``spawn`` method so that it holds
none of the server's sockets or locks, and ``nice``-d by
:data:`CHILD_NICENESS`: the operating system gives the server's request
handling the CPU first, so raters are not slowed by a training. The worker
dies with its parent: ``PR_SET_PDEATHSIG`` on Linux (a SIGKILL the kernel
sends when the thread that started it ends), and a thread that polls the
parent's pid everywhere (:func:`skal_cxr._reaper.exit_with_parent`).

The work itself is two plain functions, :func:`train_round` (one round of
the engine's :class:`~skal_cxr.engine.ActiveLoop`) and :func:`reserve_round`,
taking typed, frozen jobs and returning typed results (:mod:`~skal_cxr.labeling.worker._jobs`, no
project object), so they run the same in the worker and in the caller's
thread (a project used from a notebook). The worker reads the
images from the project's on-disk image cache, writes only the round's
model checkpoint, and hands the round back; the server records it in one
transaction. A worker killed at any moment therefore loses nothing: the
round is trained again.
"""

import os
import pickle
import signal
import sys
import threading
import traceback
from typing import Any

import numpy as np

from ..._reaper import exit_with_parent
from ..store._pool import open_pool
from ._jobs import (
    Ping,
    ReserveJob,
    ReserveResult,
    TrainingFailed,
    TrainJob,
    TrainResult,
    WarmJob,
    WorkerDied,
    _ints,
)
from ._sinks import PROGRESS_SINKS

__all__ = [
    "CHILD_NICENESS",
    "TrainerProcess",
    "TrainingFailed",
    "WorkerDied",
    "train_round",
    "reserve_round",
    "run_job",
    "RUNNERS",
    "set_parent_death_signal",
    "open_pool",
]

#: How much lower than the server's the worker's scheduling priority is (``nice``).
CHILD_NICENESS = 10

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# key -> callable(fraction); "*" in the worker process
_PROGRESS_SINKS = PROGRESS_SINKS  # the same dict, under its old name
# (project path, round) -> the loop of the last round this process stepped
_LOOPS: dict[tuple[str, int], Any] = {}


# -- the work: plain dicts in, plain dicts out ------------------------------------------
def _estimator(job, X=None):
    """The round's unfitted estimator (its scores computed on the job's scheduler, if any).

    A round of the view model gets the head on the project's encoder, loaded
    from the job's file once per process with the features of the pool ``X``
    stored beside it (:func:`~._view.load_view`).
    """
    from ...engine import build_estimator
    from ._view import load_view

    if job.view is not None:
        try:
            encoder = load_view(job.view, X)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError) as exc:
            raise TrainingFailed(
                f"the project's view {job.view} cannot be loaded ({exc}); "
                "retrain it with `skal-cxr label retrain-view`."
            ) from None
        return build_estimator(job.rounds, job.n_classes, encoder=encoder)
    est = build_estimator(job.rounds, job.n_classes)
    if job.score_scheduler:
        est.set_params(scheduler=job.score_scheduler)
    return est


def train_round(job, progress=None):
    """Run one round of the engine's loop with the labels at hand; predict the stop set.

    With the view model (``job.view`` set) only the head is fitted, on the
    encoder's features of the labeled images; the encoder is never changed.

    The round is :class:`skal_cxr.engine.ActiveLoop`'s, as in
    :func:`skal_cxr.simulation.simulate` (same estimator, seeds and
    next-batch rule): the project's labels arrive asynchronously, so the
    worker runs one :meth:`~skal_cxr.engine.ActiveLoop.step` on the images
    with a consensus (in the order they were queued), the consensus as its
    oracle, and queries ``n_next`` images from the positions not in
    ``exclude``.

    Parameters
    ----------
    job : TrainJob
        The round.
    progress : callable or None, default=None
        Called with the fraction of training epochs done after each epoch;
        ``None``: the worker process's reporter, if any.

    Returns
    -------
    result : TrainResult
        The round. The model is saved as the round's checkpoint.
    """
    from ..._lazy import take_rows
    from ...engine import ActiveLoop, torch_threads
    from ..store._checkpoints import ModelStore
    from ._progress import _EpochProgress

    rounds, r, key = job.rounds, job.round, job.path
    X = open_pool(job.path, job.image_size, job.n_images)
    codes = dict(zip(job.labeled, job.codes))
    if progress is not None:
        _PROGRESS_SINKS[key] = progress
    try:
        with torch_threads(rounds.torch_threads):
            est = _estimator(job, X)
            if hasattr(est, "epochs_for"):  # the CNN: its epochs reported as they end
                n_epochs = est.epochs_for(len(job.labeled))
                est.set_params(
                    callbacks=list(est.callbacks)
                    + [("labeling_progress", _EpochProgress(key, n_epochs))]
                )
            else:  # a head on the view: one short fit, no epochs
                n_epochs = 0
            loop = ActiveLoop(
                rounds,
                X,
                lambda idx: np.asarray([codes[int(i)] for i in idx], dtype=np.int64),
                job.labeled,
                estimator=est,
                exclude=job.exclude,
            )
            stop = np.asarray(job.stop_set, dtype=np.intp)
            result = loop.step(
                job.n_next,
                job.query_seed,
                evaluate=lambda learner: learner.predict(take_rows(X, stop)),
            )
    finally:
        if progress is not None:
            _PROGRESS_SINKS.pop(key, None)
    ModelStore(job.path).save(r, loop.learner.estimator_)
    _LOOPS.clear()  # keep one model per process: the reserve query reuses it
    _LOOPS[(key, r)] = loop
    return TrainResult(
        round=r,
        queried=result.queried,
        scores=result.scores,
        stop_predictions=_ints(np.asarray(result.evaluation).ravel()),
        fit_time=result.fit_time,
        query_time=result.query_time,
        n_epochs=int(n_epochs),
        n_labeled=result.n_labeled,
        pid=os.getpid(),
    )


def reserve_round(job):
    """Query a round's reserve: the model's next-ranked images after its batch.

    One more :meth:`~skal_cxr.engine.ActiveLoop.query` of the loop
    :func:`train_round` stepped in this process, or of its checkpoint.

    Parameters
    ----------
    job : ReserveJob
        The reserve.

    Returns
    -------
    reserve : ReserveResult
        The reserve, most informative first.
    """
    from ...engine import ActiveLoop, make_learner, torch_threads
    from ..store._checkpoints import ModelStore

    rounds, r, key = job.rounds, job.round, job.path
    X = open_pool(job.path, job.image_size, job.n_images)
    loop = _LOOPS.get((key, r))
    if loop is None:  # another process trained it: read its checkpoint
        est = ModelStore(job.path).get(r)
        if est is None:
            raise TrainingFailed(f"round {r} has no model checkpoint to query the reserve with.")
        if job.score_scheduler:
            est.set_params(scheduler=job.score_scheduler)
        learner = make_learner(rounds, job.n_classes, _estimator(job, X))
        learner.estimator_ = est
        learner.classes_ = getattr(est, "classes_", None)
        loop = ActiveLoop(rounds, X, None, (), learner=learner)
    with torch_threads(rounds.torch_threads):
        reserve, _, query_time = loop.query(job.n_reserve, job.reserve_seed, exclude=job.exclude)
    return ReserveResult(round=r, reserve=_ints(reserve), query_time=query_time, pid=os.getpid())


def warm_view(job):
    """Load the project's view with the pool's stored features (a :class:`~._jobs.WarmJob`).

    Parameters
    ----------
    job : WarmJob
        The pool and the encoder file.

    Returns
    -------
    result : dict
        ``{"pid": ...}``.
    """
    from ._view import load_view

    load_view(job.view, open_pool(job.path, job.image_size, job.n_images))
    return {"pid": os.getpid()}


def _ping(job):
    from ._view import loaded_views

    return {"pid": os.getpid(), "modules": sorted(sys.modules), "views": loaded_views()}


#: The function the worker runs for each type of job.
RUNNERS = {TrainJob: train_round, ReserveJob: reserve_round, WarmJob: warm_view, Ping: _ping}


def run_job(job, progress=None):
    """Run ``job`` by its type (:data:`RUNNERS`).

    Parameters
    ----------
    job : TrainJob, ReserveJob, WarmJob or Ping
        The job.
    progress : callable or None, default=None
        Passed to :func:`train_round`.

    Returns
    -------
    result : TrainResult, ReserveResult or dict
        Its result (a ping: ``{"pid": ...}``).
    """
    runner = RUNNERS.get(type(job))
    if runner is None:
        raise TypeError(f"the training process runs no {type(job).__name__}.")
    if runner is train_round:
        return train_round(job, progress=progress)
    return runner(job)


# -- the worker process ---------------------------------------------------------------
def set_parent_death_signal(signum=signal.SIGKILL):
    """Ask Linux to send ``signum`` to this process when its parent thread ends.

    ``prctl(PR_SET_PDEATHSIG)`` through ctypes. The signal follows the
    *thread* that started this process: start it from a thread that lives
    as long as its process.

    Parameters
    ----------
    signum : int, default=signal.SIGKILL
        The signal.

    Returns
    -------
    set : bool
        Whether it was set (False off Linux or when ``prctl`` fails).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _worker_main(conn, parent_pid, niceness):
    """The worker process: lower its priority, tie it to its parent, serve jobs."""
    set_parent_death_signal()
    exit_with_parent(parent_pid)  # ends now if the parent died before prctl took effect
    # Ctrl-C in a terminal reaches the whole process group; skorch would end
    # a fit early on it and the round would look complete. The server stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness and hasattr(os, "nice"):  # POSIX; elsewhere the worker runs at the same priority
        os.nice(niceness)
    _PROGRESS_SINKS["*"] = lambda fraction: conn.send(("progress", fraction))
    # what every job imports (torch, skorch, scikit-learn, the round engine, the head on
    # the view), before the first job: the next batch then waits for the round's work only
    from ... import frozen_view, learner  # noqa: F401
    from ...engine import _loop  # noqa: F401
    from ...strategies import STRATEGIES  # noqa: F401  (and the neighbours, clusters they use)
    from ..store import _checkpoints  # noqa: F401
    from . import _progress, _view  # noqa: F401

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        try:
            conn.send(("done", run_job(message)))
        except BaseException as exc:  # the server records it and goes on
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


class TrainerProcess:
    """One long-lived worker process that runs training jobs, ``nice``-d, tied to its parent.

    Started with the ``spawn`` method on first use (or :meth:`start`); jobs
    run one at a time through a pipe. Use it from one thread, one that lives
    as long as the worker (Linux ties the worker's death signal to the
    starting thread). A worker that died (killed, out of memory) is replaced
    by the next job.

    Parameters
    ----------
    niceness : int, default=CHILD_NICENESS
        Added to the worker's ``nice`` value (0: the server's priority).

    Attributes
    ----------
    pid : int or None
        The worker's process id, while one runs.
    """

    def __init__(self, niceness=CHILD_NICENESS):
        self.niceness = niceness
        self.pid = None
        self._process = self._conn = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self):
        """Start the worker (if none runs) and wait until it can take jobs.

        Returns
        -------
        self : TrainerProcess
            Started.
        """
        import multiprocessing

        with self._lock:
            if self._closed:
                raise TrainingFailed("the training process was closed.")
            if self._process is not None and self._process.is_alive():
                return self
            ctx = multiprocessing.get_context("spawn")
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_worker_main,
                args=(child, os.getpid(), self.niceness),
                name="skal-cxr-trainer",
                daemon=True,
            )
            process.start()
            child.close()
            self._process, self._conn, self.pid = process, parent, process.pid
        self.run(Ping())
        return self

    def run(self, job, progress=None):
        """Run ``job`` in the worker (the function of its type, :data:`RUNNERS`); wait.

        Parameters
        ----------
        job : TrainJob, ReserveJob or Ping
            The job, pickled to the worker as it is.
        progress : callable or None, default=None
            Called in this thread with the fraction of epochs done.

        Returns
        -------
        result : TrainResult, ReserveResult or dict
            The job's return value.

        Raises
        ------
        TrainingFailed
            The job raised (the worker's traceback in the message), or the
            worker died.
        """
        if not isinstance(job, Ping):
            self.start()
        conn, process = self._conn, self._process
        if conn is None:
            raise TrainingFailed("the training process is not running.")
        try:
            conn.send(job)
            while True:
                if not conn.poll(0.25):
                    if not process.is_alive():
                        raise EOFError
                    continue
                kind, *payload = conn.recv()
                if kind == "progress":
                    if progress is not None:
                        progress(payload[0])
                elif kind == "done":
                    return payload[0]
                else:
                    raise TrainingFailed(f"{payload[0]}\n(in the training process)\n{payload[1]}")
        except (EOFError, OSError, BrokenPipeError):
            process.join(5)
            code = process.exitcode
            self._forget(process)
            raise WorkerDied(
                f"the training process ended (exit code {code}) during the "
                f"{type(job).__name__} job; the next job starts a new one."
            ) from None

    def _forget(self, process):
        with self._lock:
            if self._process is process:
                self._conn.close()
                self._process = self._conn = self.pid = None

    def close(self):
        """End the worker now (a running job is lost; nothing it wrote is recorded)."""
        with self._lock:
            self._closed = True
            process, conn = self._process, self._conn
            self._process = self._conn = self.pid = None
        if process is None:
            return
        process.kill()
        process.join(10)
        conn.close()


def __getattr__(name):
    """``_EpochProgress`` (skorch), imported on first use (:pep:`562`): checkpoints name it here."""
    if name == "_EpochProgress":
        from ._progress import _EpochProgress

        return _EpochProgress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

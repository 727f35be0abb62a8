"""Training rounds in a child process, at a lower priority than the web server.

A served project trains and scores in one long-lived worker process
(:class:`TrainerProcess`), started with the ``spawn`` method so that it holds
none of the server's sockets or locks, and ``nice``-d by
:data:`CHILD_NICENESS`: the operating system gives the server's request
handling the CPU first, so raters are not slowed by a training. The worker
dies with its parent: ``PR_SET_PDEATHSIG`` on Linux (a SIGKILL the kernel
sends when the thread that started it ends), and a thread that polls the
parent's pid everywhere.

The work itself is two plain functions, :func:`train_round` and
:func:`reserve_round`, taking and returning plain dicts (lists of ints and
floats, no project object), so they run the same in the worker and in the
caller's thread (a project used from a notebook). The worker reads the
images from the project's on-disk image cache, writes only the round's
model checkpoint, and hands the round back; the server records it in one
transaction. A worker killed at any moment therefore loses nothing: the
round is trained again.
"""

import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from skorch.callbacks import Callback

__all__ = [
    "CHILD_NICENESS",
    "TrainerProcess",
    "TrainingFailed",
    "WorkerDied",
    "train_round",
    "reserve_round",
    "set_parent_death_signal",
    "open_pool",
]

#: How much lower than the server's the worker's scheduling priority is (``nice``).
CHILD_NICENESS = 10

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# key -> callable(fraction); "*" in the worker process
_PROGRESS_SINKS: dict[str, Callable[[float], None]] = {}
# (project path, round) -> the last fitted learner of this process
_LEARNERS: dict[tuple[str, int], Any] = {}


class TrainingFailed(RuntimeError):
    """A training round failed in the worker process, or the worker died.

    Parameters
    ----------
    message : str
        What failed; the worker's traceback follows it when there is one.
    """


class WorkerDied(TrainingFailed):
    """The worker process ended during a job (killed, out of memory); the next job starts one.

    Parameters
    ----------
    message : str
        How it ended.
    """


# -- the work: plain dicts in, plain dicts out ------------------------------------------
def open_pool(path, image_size, n_images):
    """The project's images at the training resolution, from its image cache, read lazily.

    The serving process builds and checks the cache (see
    :func:`~skal_cxr.labeling._pool.load_pool`); this only opens its last
    complete build.

    Parameters
    ----------
    path : path-like
        The project folder.
    image_size : sequence of (int, int)
        ``(height, width)`` of the cache.
    n_images : int
        Images of the project: the cache must hold exactly these.

    Returns
    -------
    pool : ImageRows of shape (n_images, 1, H, W), dtype uint8
        Image ``i`` (1-based id) is row ``i - 1``.

    Raises
    ------
    TrainingFailed
        When the cache is missing or holds another number of images.
    """
    from .._lazy import ImageRows
    from ..datasets import ImageCache
    from ._settings import cache_dir

    folder = cache_dir(path, image_size)
    try:
        cache = ImageCache(folder)
    except FileNotFoundError as exc:
        raise TrainingFailed(f"the project's image cache cannot be opened: {exc}") from None
    if len(cache) != n_images:
        raise TrainingFailed(
            f"the image cache {folder} holds {len(cache)} images; the project has {n_images}."
        )
    return ImageRows(cache.images)


class _EpochProgress(Callback):
    """Reports the fraction of a fit's epochs done to the progress sink ``key``.

    The sink is looked up at each epoch (a callable does not survive
    pickling into a checkpoint; a key does).
    """

    def __init__(self, key=None, n_epochs=1):
        self.key, self.n_epochs = key, n_epochs

    def on_epoch_end(self, net, **kwargs):
        sink = _PROGRESS_SINKS.get(self.key) or _PROGRESS_SINKS.get("*")
        if sink is not None:
            sink(min(1.0, len(net.history) / max(1, self.n_epochs)))


def _round_config(job):
    from ..engine import RoundConfig

    return RoundConfig.from_dict(job["rounds"])


def _estimator(job):
    from ..engine import build_estimator

    est = build_estimator(_round_config(job), job["n_classes"])
    if job.get("score_scheduler"):
        est.set_params(scheduler=job["score_scheduler"])
    return est


def _learner(estimator, job):
    from ..learner import ActiveLearner
    from ..strategies import STRATEGIES

    return ActiveLearner(estimator, query_strategy=STRATEGIES[_round_config(job).strategy])


def train_round(job, progress=None):
    """Train a round's model, predict the stop set and query the next batch.

    The same round engine as :func:`skal_cxr.simulation.simulate`
    (:mod:`skal_cxr.engine`: estimator, seeds, query): a fresh network
    fitted on the labeled images in the order they were queued, then
    ``n_next`` images queried from the pool positions not in ``exclude`` (a
    random subset of ``pool_size`` of them scored, when the round
    configuration sets it).

    Parameters
    ----------
    job : dict
        ``path`` (project folder), ``round``, ``image_size``, ``n_images``,
        ``labeled`` (0-based pool positions, in queue order), ``codes``
        (their consensus class codes), ``exclude`` (positions never to query:
        everything queued), ``n_next``, ``stop_set`` (positions),
        ``rounds`` (the project's :class:`~skal_cxr.engine.RoundConfig` as
        a dict), ``n_classes``, ``query_seed`` and ``score_scheduler`` (a
        Dask address or None).
    progress : callable or None, default=None
        Called with the fraction of training epochs done after each epoch;
        ``None``: the worker process's reporter, if any.

    Returns
    -------
    round : dict
        ``round``, ``queried`` (positions, most informative first),
        ``scores`` (list or None), ``stop_predictions`` (class codes),
        ``fit_time``, ``query_time`` (None when nothing was queried),
        ``n_epochs``, ``n_labeled`` and ``pid`` (of the process that
        trained). The model is saved as the round's checkpoint.
    """
    from .._lazy import take_rows
    from ..engine import query_round, torch_threads
    from ._models import ModelStore

    rounds, r = _round_config(job), int(job["round"])
    key = str(job["path"])
    X = open_pool(job["path"], job["image_size"], job["n_images"])
    labeled = [int(i) for i in job["labeled"]]
    codes = np.asarray(job["codes"], dtype=np.int64)
    if progress is not None:
        _PROGRESS_SINKS[key] = progress
    try:
        with torch_threads(rounds.torch_threads):
            est = _estimator(job)
            n_epochs = est.epochs_for(len(labeled))
            est.set_params(
                callbacks=list(est.callbacks)
                + [("labeling_progress", _EpochProgress(key, n_epochs))]
            )
            learner = _learner(est, job)
            t0 = time.perf_counter()
            learner.fit(X[labeled], codes)
            fit_time = time.perf_counter() - t0
            stop_pred = learner.predict(take_rows(X, np.asarray(job["stop_set"], dtype=np.intp)))
            queried, scores, query_time = [], None, None
            if job["n_next"] > 0:
                queried, scores, query_time = query_round(
                    learner,
                    X,
                    list(job["exclude"]),
                    int(job["n_next"]),
                    rounds,
                    int(job["query_seed"]),
                )
    finally:
        if progress is not None:
            _PROGRESS_SINKS.pop(key, None)
    ModelStore(job["path"]).save(r, learner.estimator_)
    _LEARNERS.clear()  # keep one model per process: the reserve query reuses it
    _LEARNERS[(key, r)] = learner
    return {
        "round": r,
        "queried": [int(q) for q in queried],
        "scores": None if scores is None else [float(s) for s in scores],
        "stop_predictions": [int(p) for p in np.asarray(stop_pred).ravel()],
        "fit_time": fit_time,
        "query_time": query_time,
        "n_epochs": int(n_epochs),
        "n_labeled": len(labeled),
        "pid": os.getpid(),
    }


def reserve_round(job):
    """Query a round's reserve: the model's next-ranked images after its batch.

    Uses the model :func:`train_round` fitted in this process, or its
    checkpoint.

    Parameters
    ----------
    job : dict
        ``path``, ``round``, ``image_size``, ``n_images``, ``rounds``,
        ``n_classes`` and ``score_scheduler`` as for :func:`train_round`,
        ``exclude`` (positions queued or just queried), ``n_reserve`` and
        ``reserve_seed``.

    Returns
    -------
    reserve : dict
        ``round``, ``reserve`` (positions, most informative first),
        ``query_time`` and ``pid``.
    """
    from ..engine import query_round, torch_threads
    from ._models import ModelStore

    rounds, r, key = _round_config(job), int(job["round"]), str(job["path"])
    learner = _LEARNERS.get((key, r))
    if learner is None:  # another process trained it: read its checkpoint
        est = ModelStore(job["path"]).get(r)
        if est is None:
            raise TrainingFailed(f"round {r} has no model checkpoint to query the reserve with.")
        if job.get("score_scheduler"):
            est.set_params(scheduler=job["score_scheduler"])
        learner = _learner(_estimator(job), job)
        learner.estimator_ = est
        learner.classes_ = getattr(est, "classes_", None)
    X = open_pool(job["path"], job["image_size"], job["n_images"])
    with torch_threads(rounds.torch_threads):
        reserve, _, query_time = query_round(
            learner,
            X,
            list(job["exclude"]),
            int(job["n_reserve"]),
            rounds,
            int(job["reserve_seed"]),
        )
    return {
        "round": r,
        "reserve": [int(q) for q in reserve],
        "query_time": query_time,
        "pid": os.getpid(),
    }


def _ping(job):
    return {"pid": os.getpid()}


_JOBS = {"train": train_round, "reserve": reserve_round, "ping": _ping}


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


def _watch_parent(parent_pid, interval=0.5):
    """End this process as soon as its parent has gone (re-parented: a new ppid)."""
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(70)


def _worker_main(conn, parent_pid, niceness):
    """The worker process: lower its priority, tie it to its parent, serve jobs."""
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(70)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), daemon=True, name="skal-cxr-parent-watch"
    ).start()
    # Ctrl-C in a terminal reaches the whole process group; skorch would end
    # a fit early on it and the round would look complete. The server stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness and hasattr(os, "nice"):  # POSIX; elsewhere the worker runs at the same priority
        os.nice(niceness)
    _PROGRESS_SINKS["*"] = lambda fraction: conn.send(("progress", fraction))
    import skal_cxr.models  # noqa: F401  (torch and skorch, before the first job)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        name, job = message
        try:
            conn.send(("done", _JOBS[name](job)))
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
        self.run("ping", {})
        return self

    def run(self, name, job, progress=None):
        """Run job ``name`` (``"train"``, ``"reserve"`` or ``"ping"``) in the worker; wait.

        Parameters
        ----------
        name : str
            The job: :func:`train_round`, :func:`reserve_round` or a ping.
        job : dict
            Its argument.
        progress : callable or None, default=None
            Called in this thread with the fraction of epochs done.

        Returns
        -------
        result : dict
            The job's return value.

        Raises
        ------
        TrainingFailed
            The job raised (the worker's traceback in the message), or the
            worker died.
        """
        if name != "ping":
            self.start()
        conn, process = self._conn, self._process
        if conn is None:
            raise TrainingFailed("the training process is not running.")
        try:
            conn.send((name, job))
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
                f"{name!r} job; the next job starts a new one."
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

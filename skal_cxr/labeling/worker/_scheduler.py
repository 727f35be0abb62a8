"""Background training of a served project: one thread, one worker process, observable state.

After :meth:`TrainingState.enable`, labels that complete a batch wake one
background thread, which makes the next round (``train(project, run)``, the
loop's :func:`~skal_cxr.labeling.worker._rounds.train_next_round`) and runs its
training and queries in a :class:`~skal_cxr.labeling.worker._process.TrainerProcess`:
a worker process at a lower priority than the server, started by that
thread and ended with it (or with the server).
"""

import threading
import time
import traceback

from ._process import CHILD_NICENESS, TrainerProcess, WorkerDied
from ._rounds import train_next_round, warm_up

__all__ = [
    "TrainingState",
    "COALESCE_SECONDS",
    "RETRIES_AFTER_WORKER_DEATH",
    "RETRY_FIRST_SECONDS",
    "RETRY_MAX_SECONDS",
]

#: Seconds after a failed round before it is tried again without a new label
#: (a disk freed, a film put back); the wait doubles after each failure in a
#: row, up to :data:`RETRY_MAX_SECONDS`.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0

#: Times in a row a round is tried again at once, in a new worker, when its
#: worker died (killed, out of memory); then the next label tries again.
RETRIES_AFTER_WORKER_DEATH = 2

#: Seconds the background thread lets labels gather before it looks whether a
#: batch is complete (a delay of the next batch far below its training time).
COALESCE_SECONDS = 0.1


class TrainingState:
    """Background training of a served project: observable state, one thread, one worker.

    After :meth:`enable`, ``notify(project)`` wakes a background thread
    that makes every round whose batch is complete, running its jobs in a
    :class:`~skal_cxr.labeling.worker._process.TrainerProcess` (a worker process at
    a lower priority, started by the thread). Without :meth:`enable` (a
    project used from a notebook), ``notify`` does nothing and
    :meth:`LabelingProject.train_round` trains in the caller's thread.

    Parameters
    ----------
    train : callable, default=None
        ``train(project, run)`` makes the pending round, if any, running
        its jobs with ``run(job)``; returns the round or None. ``None``:
        :func:`~skal_cxr.labeling.worker._rounds.train_next_round` (it
        imports no torch: the worker process does).
    warm : callable, default=None
        ``warm(project, run)``, called once the worker has started, before
        any round: what every round reads, read now. ``None``:
        :func:`~skal_cxr.labeling.worker._rounds.warm_up`. Its failures are
        left to the first round to report.

    Attributes
    ----------
    state : {"idle", "training", "querying"}
    round : int or None
        The round being made, or the last one made.
    progress : float or None
        Fraction of the training epochs done.
    error : str or None
        The last failed round's error (a short traceback), until a round succeeds.
    error_round : int or None
        The round that failed (None when it failed before it started).
    error_cause : str or None
        The error's last line (``OSError: [Errno 28] No space left on device``).
    failures : int
        Failures in a row; the round is tried again after
        ``RETRY_FIRST_SECONDS * 2 ** (failures - 1)`` seconds (at most
        :data:`RETRY_MAX_SECONDS`), or at the next label.
    last_pid : int or None
        The process that trained the last round recorded.
    trainer : TrainerProcess or None
        The worker process, once enabled.
    """

    def __init__(self, train=None, warm=None):
        self._train = train_next_round if train is None else train
        self._warm = warm_up if warm is None else warm
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._thread = None
        self.background = False
        self.trainer = None
        self.state, self.round, self.progress, self.error = "idle", None, None, None
        self.error_round, self.error_cause, self.failures, self._retry_at = None, None, 0, None
        self.last_pid = None

    def enable(self, niceness=CHILD_NICENESS):
        """Train in the background from now on, in a worker process below the server.

        Parameters
        ----------
        niceness : int, default=CHILD_NICENESS
            Added to the worker's ``nice`` value (10: a lower priority).
        """
        with self._lock:
            self.background = True
            if self.trainer is None:
                self.trainer = TrainerProcess(niceness)

    def as_dict(self):
        """``state``, ``round``, ``progress`` and ``error``, as ``GET /api/status`` shows them.

        ``error`` is None, or the last failure until a round succeeds:
        ``round``, ``cause`` (one line), ``failures`` (in a row) and
        ``retry_in`` (seconds until it is tried again; None when only a new
        label will).
        """
        error = None
        if self.error is not None:
            retry_at = self._retry_at
            error = {
                "round": self.error_round,
                "cause": self.error_cause,
                "failures": self.failures,
                "retry_in": None
                if retry_at is None
                else round(max(0.0, retry_at - time.monotonic()), 1),
            }
        return {"state": self.state, "round": self.round, "progress": self.progress, "error": error}

    def _failed(self, exc):
        """Record a failed round and when it is tried again; returns the wait in seconds."""
        self.error = traceback.format_exc(limit=3)
        # before the round started (idle), self.round is the last one made: unknown
        self.error_round = self.round if self.state != "idle" else None
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())
        self.error_cause = cause if len(cause) <= 300 else cause[:299] + "\u2026"
        self.failures += 1
        wait = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (self.failures - 1))
        self._retry_at = time.monotonic() + wait
        return wait

    def set(self, state, round_=None, progress=None):
        """Set the state (``round_=None`` keeps the round)."""
        self.state, self.progress = state, progress
        if round_ is not None:
            self.round = round_

    def report_progress(self, fraction):
        """Record the fraction of epochs done; the query follows the last epoch.

        Parameters
        ----------
        fraction : float
            Epochs done over epochs of the fit.
        """
        self.progress = fraction
        if fraction >= 1.0 and self.state == "training":
            self.state, self.progress = "querying", None

    def notify(self, project):
        """A batch may be complete: wake the background thread (started the first time).

        The thread starts the worker process at once, so that its imports
        are done before the first batch is.

        Parameters
        ----------
        project : LabelingProject
            The project to train.
        """
        if not self.background:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work,
                    args=(project, self._stop, self.trainer),
                    name="skal-cxr-training",
                    daemon=True,
                )
                self._thread.start()
            self._idle.clear()
            self._wake.set()

    def _work(self, project, stop, trainer):
        # This thread starts the worker and lives as long as it: the worker's
        # parent-death signal follows the thread that started it.
        def run(job):
            return trainer.run(job, progress=self.report_progress)

        try:
            trainer.start()  # torch imports now, not after the first batch
            self._warm(project, run)  # the pool and the view, read before the first batch
        except Exception:
            pass  # the first round starts the worker again and reports why it cannot
        deaths = 0  # of the worker, in a row
        retry = None  # seconds until a failed round is tried again
        while True:
            if not self._wake.wait(retry):  # the time to try a failed round again
                with self._lock:
                    self._idle.clear()
            # one look per burst of labels: whether a batch is complete costs a
            # pass over the queue, in the server's interpreter
            if stop.wait(COALESCE_SECONDS):
                return
            self._wake.clear()
            try:
                while not stop.is_set() and self._train(project, run) is not None:
                    pass
                self.error, deaths, retry = None, 0, None
                self.failures, self._retry_at = 0, None
            except Exception as exc:  # keep serving; the status shows the error
                if stop.is_set():
                    return
                retry = self._failed(exc)
                print(f"skal-cxr label: training failed:\n{self.error}", flush=True)
                if isinstance(exc, WorkerDied):
                    deaths += 1
                    if deaths <= RETRIES_AFTER_WORKER_DEATH:
                        self._wake.set()  # nothing was recorded: train it again now
            finally:
                self.set("idle")
            with self._lock:
                if not self._wake.is_set():
                    self._idle.set()

    def join(self, timeout=None):
        """Wait until no training runs or is pending (tests, shutdown).

        Parameters
        ----------
        timeout : float or None, default=None
            Seconds to wait at most.

        Returns
        -------
        idle : bool
            Whether it is idle now.
        """
        return self._idle.wait(timeout)

    def close(self, timeout=30):
        """Stop the background thread and end the worker (a running round is not recorded).

        :meth:`enable` and ``notify`` start them again.

        Parameters
        ----------
        timeout : float, default=30
            Seconds to wait for the thread.
        """
        with self._lock:
            thread, trainer, stop = self._thread, self.trainer, self._stop
            self._thread, self.trainer, self.background = None, None, False
            self._stop = threading.Event()
            self._idle.set()
        stop.set()
        self._wake.set()
        if trainer is not None:
            trainer.close()
        if thread is not None:
            thread.join(timeout)
        self.set("idle")

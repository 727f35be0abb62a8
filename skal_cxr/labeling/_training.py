"""Training rounds of a project: when a batch is complete, train, query, record.

A round ``r >= 1`` is made when every image of round ``r - 1``'s batch is
done. The serving process reads one snapshot of the database (the labeled
images and their consensus, everything queued) into a plain job, hands it to
the training worker process (:mod:`._trainer`), and records what comes back
(the queried images, their scores, the stop-set predictions) in one
transaction; then the round's *reserve* (the model's next-ranked images,
for raters who finish the batch before the next one is ready) is queried
the same way and added to the round. Nothing is written before that
transaction, so a server or worker killed at any moment loses no label and
leaves no half round: the round is trained again.

In a served project (:meth:`TrainingState.enable`) one background thread
does this, in a worker process at a lower priority; from a notebook,
:meth:`LabelingProject.train_round` does it in the caller's thread.
"""

import json
import threading
import traceback

import numpy as np

from ._db import transaction
from ._trainer import CHILD_NICENESS, TrainerProcess, reserve_round, train_round

__all__ = ["TrainingState", "train_next_round", "round_job"]


def _round_ready(project, conn):
    """The latest round, if its batch is complete and the loop goes on; else None."""
    latest = project._latest_round(conn)
    if project._finished(conn, latest):
        return None
    states = project._image_states(conn)
    batch = [s for s in states.values() if s["round"] == latest["round"] and s["kind"] == "batch"]
    if not batch or not all(s["done"] for s in batch):
        return None
    return latest


def round_job(project):
    """The job of the next round (see :func:`~._trainer.train_round`), or None.

    None when the latest batch is not complete or the loop is over. Builds
    (or checks) the project's image cache first, so the worker only opens it.
    """
    from .._random import round_seed

    with project._connect() as conn:
        latest = _round_ready(project, conn)
        if latest is None:
            return None
        ids, codes = project.labeled_set(conn)
        queued = [r[0] for r in conn.execute("SELECT image_id FROM queue ORDER BY seq")]
    cfg = project.config
    n = len(project.pool_array())
    r = latest["round"] + 1
    seed = cfg["random_state"]
    return {
        "path": str(project.path), "round": r, "image_size": list(cfg["image_size"]),
        "n_images": n, "labeled": (ids - 1).tolist(), "codes": codes.tolist(),
        "exclude": [q - 1 for q in queued],
        "n_next": max(0, min(cfg["batch_size"], project._budget() - len(queued),
                             n - len(queued))),
        "stop_set": [i - 1 for i in project.stop_set], "simulation": cfg["simulation"],
        "strategy": cfg["strategy"], "n_classes": len(project.classes), "random_state": seed,
        # the simulation's query of its round r - 1 (its round 0 fits the initial set)
        "query_seed": round_seed(seed, r - 1),
        "score_scheduler": project.score_scheduler,
    }


def _record_round(project, job, result):
    """Insert the round in one transaction; return ``(queried, queued ids)`` or None."""
    r, budget = job["round"], project._budget()
    counts = np.bincount(np.asarray(job["codes"], dtype=np.int64),
                         minlength=len(project.classes)).tolist()
    queried, scores = result["queried"], result["scores"]
    with project._connect() as conn, transaction(conn):
        if conn.execute("SELECT 1 FROM rounds WHERE round = ?", (r,)).fetchone():
            return None  # another process made it meanwhile
        # reserve images handed out while training are queued already and count
        # against the budget
        now = {row[0] for row in conn.execute("SELECT image_id FROM queue")}
        keep = [k for k, q in enumerate(queried) if q + 1 not in now][:max(0, budget - len(now))]
        queried = [queried[k] for k in keep]
        scores = None if scores is None else [scores[k] for k in keep]
        project._insert_round(conn, r, job["strategy"], [q + 1 for q in queried], scores, [],
                              len(job["labeled"]), counts, result["fit_time"],
                              result["query_time"], result["stop_predictions"])
    return queried, now


def _run_here(project):
    """Run jobs in this thread (a project without a background worker)."""
    state = project.training

    def run(name, job):
        if name == "train":
            return train_round(job, progress=state.report_progress)
        return reserve_round(job)

    return run


def train_next_round(project, run=None):
    """If the latest batch is complete: train, predict the stop set, query; return the round.

    Parameters
    ----------
    project : LabelingProject
        The project.
    run : callable or None, default=None
        ``run(name, job)`` runs a job of :mod:`._trainer` (``"train"`` or
        ``"reserve"``) and returns its result; ``None`` runs them here.

    Returns
    -------
    round : int or None
        The round recorded; None when there was nothing to do (or another
        process recorded it first). Safe to call again after a crash:
        nothing is written until the new round is inserted, in one
        transaction.
    """
    run = run or _run_here(project)
    state = project.training
    job = round_job(project)
    if job is None:
        return None
    r = job["round"]
    state.set("training", r, 0.0)
    result = run("train", job)
    recorded = _record_round(project, job, result)
    if recorded is None:
        return None
    queried, now = recorded
    state.last_pid = result["pid"]
    exclude = sorted({i - 1 for i in now} | set(queried))
    reserve_n = min(project.config["reserve_size"], job["n_images"] - len(exclude))
    if queried and reserve_n > 0:
        state.set("querying", r, None)
        seed = int(np.random.SeedSequence([job["random_state"], r, 1]).generate_state(1)[0])
        reserve = run("reserve", {**job, "exclude": exclude, "n_reserve": reserve_n,
                                  "reserve_seed": seed})["reserve"]
        with project._connect() as conn, transaction(conn):
            conn.execute("UPDATE rounds SET reserve = ? WHERE round = ?",
                         (json.dumps([q + 1 for q in reserve]), r))
    state.set("idle", r)
    project._after_change()  # a further batch may already be complete (reserve labels)
    return r


class TrainingState:
    """Background training of a served project: observable state, one thread, one worker.

    After :meth:`enable`, ``notify(project)`` wakes a background thread
    that trains every complete batch in a :class:`~._trainer.TrainerProcess`
    (a worker process at a lower priority, started with the thread). Without
    :meth:`enable` (a project used from a notebook), ``notify`` does nothing
    and :meth:`LabelingProject.train_round` trains in the caller's thread.

    Attributes
    ----------
    state : {"idle", "training", "querying"}
    round : int or None
        The round being made, or the last one made.
    progress : float or None
        Fraction of the training epochs done.
    error : str or None
        The last failed round's error, until a round succeeds.
    last_pid : int or None
        The process that trained the last round recorded.
    trainer : TrainerProcess or None
        The worker process, once enabled.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._thread = None
        self.background = False
        self.trainer = None
        self.state, self.round, self.progress, self.error = "idle", None, None, None
        self.last_pid = None

    def enable(self, niceness=CHILD_NICENESS):
        """Train in the background from now on, in a worker ``niceness`` below the server."""
        with self._lock:
            self.background = True
            if self.trainer is None:
                self.trainer = TrainerProcess(niceness)

    def as_dict(self):
        return {"state": self.state, "round": self.round, "progress": self.progress}

    def set(self, state, round_=None, progress=None):
        self.state, self.progress = state, progress
        if round_ is not None:
            self.round = round_

    def report_progress(self, fraction):
        """Record the fraction of epochs done; the query follows the last epoch."""
        self.progress = fraction
        if fraction >= 1.0 and self.state == "training":
            self.state, self.progress = "querying", None

    def notify(self, project):
        """Wake the background thread (starting it and its worker the first time)."""
        if not self.background:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, args=(project, self._stop, self.trainer),
                    name="skal-cxr-training", daemon=True)
                self._thread.start()
            self._idle.clear()
            self._wake.set()

    def _work(self, project, stop, trainer):
        # This thread starts the worker and lives as long as it: the worker's
        # parent-death signal follows the thread that started it.
        def run(name, job):
            return trainer.run(name, job, progress=self.report_progress)

        try:
            trainer.start()  # torch imports now, not after the first batch
        except Exception:
            pass  # the first job starts one again and reports why it cannot
        while True:
            self._wake.wait()
            if stop.is_set():
                return
            self._wake.clear()
            try:
                while not stop.is_set() and train_next_round(project, run) is not None:
                    pass
                self.error = None
            except Exception:  # keep serving; the status shows the error
                if stop.is_set():
                    return
                self.error = traceback.format_exc(limit=3)
                print(f"skal-cxr label: training failed:\n{self.error}", flush=True)
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
        """Stop the background thread and end the worker (a running round is lost, not half-written).

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

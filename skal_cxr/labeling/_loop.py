"""The labeling loop: cold start, training and query rounds, the stopping signal.

A round ``r >= 1`` is made when every image of round ``r - 1``'s batch is
done: a fresh network is trained on every image with a consensus label (in
the order they were queued), its predictions on the stop set are stored,
and the next batch is queried from the images never queued, exactly as
:func:`skal_cxr.simulation.simulate` does (same estimator, seeds and round
primitives), so a project labeled by an oracle acquires the same images as a
simulation with the same seed. Then the *reserve* (the model's next-ranked
images after the batch) is computed for raters who run out before the next
batch is ready.
"""

import json
import threading
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from ._db import transaction

__all__ = ["cold_start", "load_pool", "build_pool_cache", "cache_dir", "train_next_round",
           "stopping_signal", "TrainingState", "predict_image"]


def _seed(project):
    return project.config["random_state"]


def _sim_config(project):
    return project.config["simulation"]


def cold_start(project):
    """The first batch and its reserve, without a model: ``(batch, reserve, name)``.

    ``random``: the initial set a simulation draws when it has no labels
    (:func:`~skal_cxr.simulation.initial_indices` with ``stratify=False``),
    then the reserve drawn at random from the rest. ``k_center``: greedy
    k-center on the embeddings of the untrained, seeded network.
    """
    from ..simulation._runner import initial_indices

    cfg = project.config
    n = project.n_images()
    size, seed = cfg["initial_size"], _seed(project)
    reserve_size = min(cfg["reserve_size"], n - size)
    if cfg["cold_start"] == "random":
        batch = initial_indices(np.zeros(n, dtype=np.int64), size, seed, stratify=False)
        rest = np.setdiff1d(np.arange(n), batch)
        reserve = np.random.default_rng([seed, 2]).permutation(rest)[:reserve_size]
    else:
        from ..simulation._runner import build_estimator
        from ..strategies import k_center_greedy

        X = project.pool_array()
        est = build_estimator(_sim_config(project), len(project.classes), seed).initialize()
        emb = est.embed(X)
        order = k_center_greedy(emb, size + reserve_size, random_state=seed)
        batch, reserve = np.asarray(order[:size]), np.asarray(order[size:])
    return (np.asarray(batch) + 1).tolist(), (np.asarray(reserve) + 1).tolist(), cfg["cold_start"]


def cache_dir(path, image_size):
    """The image cache folder of the project in ``path`` at ``image_size``."""
    height, width = image_size
    return Path(path) / "cache" / f"images-{height}x{width}"


def build_pool_cache(path, image_size, files, *, n_jobs=None, progress=False):
    """Build (or bring up to date) the image cache of a project's ``files``; return it.

    Resumable and incremental (see :func:`~skal_cxr.datasets.build_image_cache`):
    a build killed at any point goes on where it stopped, and files
    unchanged since the last build are not decoded again.

    Raises
    ------
    LabelingError
        When some files cannot be read (the first 20 are listed).
    """
    from ..datasets import build_image_cache
    from ._errors import LabelingError

    cache = build_image_cache(files, cache_dir(path, image_size), tuple(image_size),
                              n_jobs=n_jobs, verbose=progress)
    if cache.errors:
        listed = list(cache.errors.values())
        raise LabelingError(f"{len(listed)} images cannot be read: " + "; ".join(listed[:20])
                            + (" ..." if len(listed) > 20 else ""))
    return cache


def load_pool(project):
    """All images at the training resolution, read lazily from the project's image cache.

    Returns an :class:`~skal_cxr.datasets.ImageRows` view of the cache's
    memory map in pool order (image ``i`` is row ``i - 1``): indexing it
    reads only the rows asked for, so training reads the labeled images,
    and scoring streams the pool batch by batch. The cache is built on first
    use and checked (by size and modification time) on every later one. The
    ``pool-*.npy`` files of earlier versions are deleted once it is ready.
    """
    from .._lazy import ImageRows

    table = project.image_table()
    root = Path(project.config["image_dir"])
    cache = build_pool_cache(project.path, project.config["image_size"],
                             [root / rel for _, rel, _, _ in table])
    changed = [rel for (_, rel, sha, _), entry in zip(table, cache.index)
               if entry["sha256"] != sha]
    if changed:
        warnings.warn(f"{len(changed)} images changed since they were registered (first: "
                      f"{changed[0]}); the model sees their new content.", stacklevel=2)
    for old in (project.path / "cache").glob("pool-*x*-*.npy"):
        old.unlink(missing_ok=True)  # the float32 pool of earlier versions
    return ImageRows(cache.images)


class TrainingState:
    """Background training of a served project: one worker thread, observable state.

    ``notify(project)`` starts the worker when the latest batch is complete
    and no training is running; without :meth:`enable` (a project used from
    a notebook), it does nothing and :meth:`LabelingProject.train_round`
    trains in the caller's thread.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._thread = None
        self.background = False
        self.state, self.round, self.progress, self.error = "idle", None, None, None

    def enable(self):
        self.background = True

    def as_dict(self):
        return {"state": self.state, "round": self.round, "progress": self.progress}

    def set(self, state, round_=None, progress=None):
        self.state, self.progress = state, progress
        if round_ is not None:
            self.round = round_

    def notify(self, project):
        if not self.background:
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._again = True
                return
            self._again = False
            self._thread = threading.Thread(target=self._work, args=(project,),
                                            name="skal-cxr-training", daemon=True)
            self._thread.start()

    def _work(self, project):
        while True:
            try:
                train_next_round(project)
                self.error = None
            except Exception:  # keep serving; the status shows the error
                self.error = traceback.format_exc(limit=3)
                print(f"skal-cxr label: training failed:\n{self.error}", flush=True)
            finally:
                self.set("idle")
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False

    def join(self, timeout=None):
        """Wait for the worker (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


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


_STATES: dict[str, TrainingState] = {}  # by key: a callback parameter must survive clone


class _EpochProgress(Callback):
    """Reports the fraction of a fit's epochs done to the :class:`TrainingState` ``key``."""

    def __init__(self, key=None, n_epochs=1):
        self.key, self.n_epochs = key, n_epochs

    def on_epoch_end(self, net, **kwargs):
        state = _STATES.get(self.key)
        if state is not None:
            state.progress = min(1.0, (state.progress or 0.0) + 1.0 / max(1, self.n_epochs))


def train_next_round(project):
    """If the latest batch is complete: train, predict the stop set, query; return the round.

    Returns None when there is nothing to do. Safe to call again after a crash:
    nothing is written until the new round is inserted, in one transaction.
    """
    from ..learner import ActiveLearner
    from .._lazy import take_rows
    from .._random import round_seed
    from ..simulation._runner import _torch_threads, build_estimator, query_round
    from ..strategies import STRATEGIES

    cfg, sim = project.config, _sim_config(project)
    state = project.training
    with project._connect() as conn:
        latest = _round_ready(project, conn)
        if latest is None:
            return None
        ids, codes = project.labeled_set(conn)
        queued = [r[0] for r in conn.execute("SELECT image_id FROM queue ORDER BY seq")]
    r = latest["round"] + 1
    seed = _seed(project)
    state.set("training", r, 0.0)
    X = project.pool_array()
    labeled = (ids - 1).tolist()
    n_classes = len(project.classes)
    with _torch_threads(sim["torch_threads"]):
        est = build_estimator(sim, n_classes, seed)
        if project.score_scheduler is not None:
            est.set_params(scheduler=project.score_scheduler)
        n_epochs = est.epochs_for(len(labeled))
        _STATES[str(project.path)] = state
        est.set_params(callbacks=list(est.callbacks) + [
            ("labeling_progress", _EpochProgress(str(project.path), n_epochs))])
        learner = ActiveLearner(est, query_strategy=STRATEGIES[cfg["strategy"]])
        t0 = time.perf_counter()
        learner.fit(X[labeled], codes)
        fit_time = time.perf_counter() - t0
        state.set("querying", r, None)
        stop_pred = learner.predict(take_rows(X, np.asarray(project.stop_set) - 1))
        budget = project._budget()
        n_next = max(0, min(cfg["batch_size"], budget - len(queued), len(X) - len(queued)))
        exclude = (np.asarray(queued, dtype=np.int64) - 1).tolist()
        queried, scores, query_time = [], None, None
        if n_next > 0:
            # same seed as the simulation's round r - 1 (its round 0 fits the initial set)
            queried, scores, query_time = query_round(
                learner, X, exclude, n_next, sim, round_seed(seed, r - 1))
    _save_checkpoint(project, r, learner.estimator_)
    counts = np.bincount(codes, minlength=n_classes).tolist()
    with project._connect() as conn, transaction(conn):
        if conn.execute("SELECT 1 FROM rounds WHERE round = ?", (r,)).fetchone():
            return None  # another process made it meanwhile
        # reserve images handed out while training are queued already and count
        # against the budget
        now = {row[0] for row in conn.execute("SELECT image_id FROM queue")}
        keep = [k for k, q in enumerate(queried) if q + 1 not in now][:max(0, budget - len(now))]
        queried = [queried[k] for k in keep]
        scores = None if scores is None else [scores[k] for k in keep]
        project._insert_round(conn, r, cfg["strategy"], [q + 1 for q in queried], scores, [],
                              len(labeled), counts, fit_time, query_time, stop_pred)
    project._models[r] = learner.estimator_
    exclude = sorted({i - 1 for i in now} | set(queried))
    reserve_n = min(cfg["reserve_size"], len(X) - len(exclude))
    if queried and reserve_n > 0:
        state.set("querying", r, None)
        with _torch_threads(sim["torch_threads"]):
            reserve, _, _ = query_round(
                learner, X, exclude, reserve_n, sim,
                int(np.random.SeedSequence([seed, r, 1]).generate_state(1)[0]))
        with project._connect() as conn, transaction(conn):
            conn.execute("UPDATE rounds SET reserve = ? WHERE round = ?",
                         (json.dumps([q + 1 for q in reserve]), r))
    state.set("idle", r)
    project._after_change()  # a further batch may already be complete (reserve labels)
    return r


def _checkpoint_path(project, r):
    return project.path / "checkpoints" / f"round-{r}.joblib"


def _save_checkpoint(project, r, estimator):
    import joblib

    path = _checkpoint_path(project, r)
    tmp = path.with_suffix(".tmp")
    scheduler = getattr(estimator, "scheduler", None)
    if scheduler is not None:  # a setting of this session, not of the model
        estimator.set_params(scheduler=None)
    try:
        joblib.dump(estimator, tmp)
    finally:
        if scheduler is not None:
            estimator.set_params(scheduler=scheduler)
    tmp.replace(path)


def predict_image(project, image_id):
    """The latest model's prediction for one image, or None before the first model."""
    with project._connect() as conn:
        latest = project._latest_round(conn)
    r = latest["round"]
    if r == 0 or image_id is None:
        return None
    model = project._models.get(r)
    if model is None:
        import joblib

        path = _checkpoint_path(project, r)
        if not path.is_file():
            return None
        model = project._models[r] = joblib.load(path)
    X = project.pool_array()
    if not 1 <= image_id <= len(X):
        return None
    proba = np.asarray(model.predict_proba(X[image_id - 1:image_id]))[0]
    return {"class": project.classes[int(np.argmax(proba))],
            "probabilities": {c: float(p) for c, p in zip(project.classes, proba)}}


def _cohen_kappa(a, b):
    from sklearn.metrics import cohen_kappa_score

    a, b = np.asarray(a), np.asarray(b)
    if np.array_equal(a, b):
        return 1.0
    value = cohen_kappa_score(a, b)
    return float(value) if np.isfinite(value) else 0.0


def stopping_signal(project, rounds, n_queued):
    """Stabilizing predictions (Bloodgood and Vijay-Shanker, 2009) and the budget.

    Cohen's kappa between the stop-set predictions of successive models; the
    signal is up when the mean of the last ``stop_window`` kappas reaches
    ``stop_threshold``, or when the budget is spent.
    """
    cfg = project.config
    preds = [r["stop_predictions"] for r in rounds if r["stop_predictions"] is not None]
    kappas = [_cohen_kappa(a, b) for a, b in zip(preds, preds[1:])]
    window = kappas[-cfg["stop_window"]:]
    stable = len(window) == cfg["stop_window"] and float(np.mean(window)) >= cfg["stop_threshold"]
    budget_left = None if cfg["budget"] is None else max(0, cfg["budget"] - n_queued)
    return {"stop": bool(stable or budget_left == 0), "kappa_window": window,
            "threshold": cfg["stop_threshold"], "budget_left": budget_left}

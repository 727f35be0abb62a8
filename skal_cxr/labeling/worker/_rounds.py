"""The labeling loop: cold start, training and query rounds, predictions.

A round ``r >= 1`` is made when every image of round ``r - 1``'s batch is
done: a fresh network is trained on every image with a consensus label (in
the order they were queued), its predictions on the stop set are stored,
and the next batch is queried from the images never queued, exactly as
:func:`skal_cxr.simulation.simulate` does (the same round engine,
:mod:`skal_cxr.engine`: same estimator, seeds and round primitives), so a
project labeled by an oracle acquires the same images as a simulation with
the same seed. Then the *reserve* (the model's next-ranked images after the
batch) is computed for raters who run out before the next batch is ready.

The training and the queries are typed jobs (:mod:`~skal_cxr.labeling.worker._jobs`, run by
:mod:`~skal_cxr.labeling.worker._process` as one round of :class:`skal_cxr.engine.ActiveLoop`): a
served project runs them in a worker process at a lower priority than the
web server (:mod:`~skal_cxr.labeling.worker._scheduler`), and this module records what comes back.
It runs in the server's training thread, so it imports no torch at module
level (the embeddings are imported where the cold start computes them).

The loop works on a :class:`~skal_cxr.labeling.LabelingProject` through its
public collaborators: ``db`` (connections), ``queue`` (rounds and queue),
``model_store`` (checkpoints), ``training`` (the worker's state) and
``round_config`` (the engine's settings), and its public methods.
"""

import dataclasses

import numpy as np

from ..._random import derived_seed, round_seed
from .._settings import cache_dir
from ..store._db import transaction
from ._jobs import ReserveJob, TrainJob, WarmJob
from ._process import run_job
from ._view import load_view, uses_view, view_file

__all__ = [
    "cold_start",
    "pool_embedding",
    "round_job",
    "train_next_round",
    "warm_up",
    "predict_image",
]


def cold_start(project):
    """The first batch and its reserve, without a model: ``(batch, reserve, name)``.

    See :func:`~skal_cxr.engine.cold_start_batch` (``typicality`` and
    ``probcover`` read the project's view of the pool: its encoder's
    features, or 50 principal components of the pixels cached beside the
    image cache, :func:`pool_embedding`). Image ids are 1-based pool positions.
    """
    from ...engine import cold_start_batch

    cfg = project.config
    n = project.n_images()
    size = cfg["initial_size"]
    method = cfg["cold_start"]
    batch, reserve = cold_start_batch(
        method,
        n,
        size,
        min(cfg["reserve_size"], n - size),
        # k-center reads the untrained CNN's embeddings, whatever the rounds train
        config=dataclasses.replace(project.round_config, model="cnn")
        if method == "k_center"
        else project.round_config,
        n_classes=len(project.classes),
        X=project.pool_array() if method == "k_center" else None,
        features=pool_embedding(project) if method in ("typicality", "probcover") else None,
    )
    return (batch + 1).tolist(), (reserve + 1).tolist(), method


def pool_embedding(project):
    """The project pool's label-free view: its encoder's features, or PCA-50 of the pixels.

    A project of the view model (``model="view"``) gives the features of its
    trained encoder (:mod:`~skal_cxr.labeling.worker._view`; computed once per encoder in this
    process). Others: 50 principal components of the pixels, computed at the
    first call (at ``init`` for the ``typicality`` and ``probcover`` cold
    starts) and kept beside the image cache, keyed by a fingerprint of the
    pool.

    Parameters
    ----------
    project : LabelingProject
        The project.

    Returns
    -------
    features : ndarray of shape (n_images, n_components), dtype float32
        One row per pool image, in pool order.
    """
    from ...embeddings import PixelPCA, cached_embedding, memoized_transform

    file = view_file(project.path) if uses_view(project.round_config) else None
    if file is not None:
        X = project.pool_array()
        return memoized_transform(load_view(file, X), X)
    folder = cache_dir(project.path, project.config["image_size"])
    return cached_embedding(
        PixelPCA(n_components=50, random_state=project.round_config.seed),
        project.pool_array(),
        folder,
        name="pca",
    )


def round_job(project):
    """The job of the next round (see :func:`~._trainer.train_round`), or None.

    None when the latest batch is not complete or the loop is over. One
    database snapshot gives the labeled images (in queue order) with their
    consensus and everything queued. Builds (or checks) the project's image
    cache first, so that the worker only opens it.

    Parameters
    ----------
    project : LabelingProject
        The project.

    Returns
    -------
    job : TrainJob or None
        Checked: the worker process needs nothing else.
    """
    rounds, queue = project.round_config, project.queue
    with project.db.connect() as conn:
        latest = queue.round_ready(conn)
        if latest is None:
            return None
        ids, codes = project.labeled_set(conn)
        queued = queue.queued_ids(conn)
    n = len(project.pool_array())
    r = latest["round"] + 1
    return TrainJob(
        path=str(project.path),
        round=r,
        image_size=project.config["image_size"],
        n_images=n,
        labeled=(ids - 1).tolist(),
        codes=codes.tolist(),
        exclude=[q - 1 for q in queued],
        n_next=max(0, min(rounds.query_size, project.budget() - len(queued), n - len(queued))),
        stop_set=[i - 1 for i in project.stop_set],
        rounds=rounds,
        n_classes=len(project.classes),
        # same seed as the simulation's round r - 1 (its round 0 fits the initial set)
        query_seed=round_seed(rounds.seed, r - 1),
        score_scheduler=project.score_scheduler,
        view=view_file(project.path) if uses_view(rounds) else None,
    )


def _record_round(project, job, result):
    """Insert the round in one transaction; ``(queried, queued ids)``, or None if it exists."""
    queue, budget = project.queue, project.budget()
    counts = np.bincount(
        np.asarray(job.codes, dtype=np.int64), minlength=len(project.classes)
    ).tolist()
    queried, scores = list(result.queried), result.scores
    with project.db.connect() as conn, transaction(conn):
        if queue.has_round(conn, job.round):
            return None  # another process made it meanwhile
        # reserve images handed out while training are queued already and count
        # against the budget
        now = set(queue.queued_ids(conn))
        keep = [k for k, q in enumerate(queried) if q + 1 not in now][: max(0, budget - len(now))]
        queried = [queried[k] for k in keep]
        scores = None if scores is None else [scores[k] for k in keep]
        queue.insert_round(
            conn,
            round_=job.round,
            strategy=project.round_config.strategy,
            queried=[q + 1 for q in queried],
            scores=scores,
            n_labeled=len(job.labeled),
            class_counts=counts,
            fit_time=result.fit_time,
            query_time=result.query_time,
            stop_predictions=result.stop_predictions,
        )
    return queried, now


def _run_here(project):
    """``run(job)`` in this thread (a project without a background worker)."""
    state = project.training

    def run(job):
        return run_job(job, progress=state.report_progress)

    return run


def train_next_round(project, run=None):
    """If the latest batch is complete: train, predict the stop set, query; return the round.

    The training and the queries run as typed jobs (:mod:`~skal_cxr.labeling.worker._process`,
    one round of the engine's :class:`~skal_cxr.engine.ActiveLoop`), in the
    background worker process of a served project or here; this records
    what they return. Safe to call again after a crash: nothing is written
    until the new round is inserted, in one transaction (the reserve is
    added to it afterwards).

    Parameters
    ----------
    project : LabelingProject
        The project.
    run : callable or None, default=None
        ``run(job)`` runs a :class:`~._jobs.TrainJob` or
        :class:`~._jobs.ReserveJob` and returns its result; ``None`` runs
        them in this thread.

    Returns
    -------
    round : int or None
        The round recorded; None when there was nothing to do (or another
        process recorded it first).
    """
    run = run or _run_here(project)
    state = project.training
    job = round_job(project)
    if job is None:
        return None
    r = job.round
    state.set("training", r, 0.0)
    result = run(job)
    recorded = _record_round(project, job, result)
    if recorded is None:
        return None
    queried, now = recorded
    state.last_pid = result.pid
    exclude = sorted({i - 1 for i in now} | set(queried))
    reserve_n = min(project.config["reserve_size"], job.n_images - len(exclude))
    if queried and reserve_n > 0:
        state.set("querying", r, None)
        seed = derived_seed(project.round_config.seed, r, 1)
        reserve = run(ReserveJob.after(job, exclude, reserve_n, seed)).reserve
        with project.db.connect() as conn, transaction(conn):
            project.queue.set_reserve(conn, r, [q + 1 for q in reserve])
    state.set("idle", r)
    state.notify(project)  # a further batch may already be complete (reserve labels)
    return r


def warm_up(project, run):
    """Before the first batch is done: read the pool here, load the view in the worker.

    The server's training thread calls it once it has started the worker, so
    that the first round waits for its fit and query only: reading and
    checking the project's image cache (in this process) and handing the
    view's stored features to the worker's feature memory each take about
    half a second at 10,000 images.

    Parameters
    ----------
    project : LabelingProject
        The project.
    run : callable
        ``run(job)`` runs a :class:`~._jobs.WarmJob` in the worker.
    """
    n = len(project.pool_array())
    file = view_file(project.path) if uses_view(project.round_config) else None
    if file is not None:
        run(
            WarmJob(
                path=str(project.path),
                image_size=project.config["image_size"],
                n_images=n,
                view=file,
            )
        )


def predict_image(project, image_id):
    """The latest model's prediction for one image, or None before the first model.

    Parameters
    ----------
    project : LabelingProject
        The project.
    image_id : int or None
        The image.

    Returns
    -------
    prediction : dict or None
        ``class`` and ``probabilities``.
    """
    with project.db.connect() as conn:
        latest = project.queue.latest_round(conn)
    r = latest["round"]
    if r == 0 or image_id is None:
        return None
    model = project.model_store.get(r)
    if model is None:
        return None
    X = project.pool_array()
    if not 1 <= image_id <= len(X):
        return None
    proba = np.asarray(model.predict_proba(X[image_id - 1 : image_id]))[0]
    return {
        "class": project.classes[int(np.argmax(proba))],
        "probabilities": {c: float(p) for c, p in zip(project.classes, proba)},
    }

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

The loop works on a :class:`~skal_cxr.labeling.LabelingProject` through its
public collaborators: ``db`` (connections), ``queue`` (rounds and queue),
``model_store`` (checkpoints), ``training`` (the worker's state) and
``round_config`` (the engine's settings), and its public methods.
"""

import time
from types import SimpleNamespace

import numpy as np

from .._lazy import take_rows
from .._random import round_seed
from ..embeddings import PixelPCA, cached_embedding
from ..engine import build_estimator, initial_indices, query_round, torch_threads
from ..learner import ActiveLearner
from ..strategies import STRATEGIES, k_center_greedy
from ._db import transaction
from ._settings import cache_dir
from ._training import EpochProgress

__all__ = ["cold_start", "pool_embedding", "train_next_round", "predict_image"]


def cold_start(project):
    """The first batch and its reserve, without a model: ``(batch, reserve, name)``.

    ``random``: the initial set a simulation draws when it has no labels
    (:func:`~skal_cxr.engine.initial_indices` with ``stratify=False``),
    then the reserve drawn at random from the rest. ``k_center``: greedy
    k-center on the embeddings of the untrained, seeded network.
    ``typicality`` / ``probcover``: the label-free strategy on 50 principal
    components of the pool's pixels, computed once and cached beside the
    image cache (:func:`~skal_cxr.embeddings.cached_embedding`); the batch
    is its first picks, the reserve the next ones.
    """
    cfg = project.config
    rounds = project.round_config
    n = project.n_images()
    size, seed = cfg["initial_size"], rounds.seed
    reserve_size = min(cfg["reserve_size"], n - size)
    if cfg["cold_start"] == "random":
        batch = initial_indices(np.zeros(n, dtype=np.int64), size, seed, stratify=False)
        rest = np.setdiff1d(np.arange(n), batch)
        reserve = np.random.default_rng([seed, 2]).permutation(rest)[:reserve_size]
    elif cfg["cold_start"] in ("typicality", "probcover"):
        features = pool_embedding(project)
        learner = SimpleNamespace(estimator=None, X_training=None)
        order, _ = STRATEGIES[cfg["cold_start"]](
            learner, features, size + reserve_size, embedding="precomputed",
            random_state=np.random.default_rng([seed, 1]))
        batch, reserve = np.asarray(order[:size]), np.asarray(order[size:])
    else:
        X = project.pool_array()
        est = build_estimator(rounds, len(project.classes)).initialize()
        emb = est.embed(X)
        order = k_center_greedy(emb, size + reserve_size, random_state=seed)
        batch, reserve = np.asarray(order[:size]), np.asarray(order[size:])
    return (np.asarray(batch) + 1).tolist(), (np.asarray(reserve) + 1).tolist(), cfg["cold_start"]


def pool_embedding(project):
    """The project pool's label-free view: PCA-50 of the pixels, cached on disk.

    Computed at the first call (at ``init`` for the ``typicality`` and
    ``probcover`` cold starts) and kept beside the image cache, keyed by a
    fingerprint of the pool.

    Parameters
    ----------
    project : LabelingProject
        The project.

    Returns
    -------
    features : ndarray of shape (n_images, n_components), dtype float32
        One row per pool image, in pool order.
    """
    folder = cache_dir(project.path, project.config["image_size"])
    return cached_embedding(PixelPCA(n_components=50, random_state=project.round_config.seed),
                            project.pool_array(), folder, name="pca")


def train_next_round(project):
    """If the latest batch is complete: train, predict the stop set, query; return the round.

    Returns None when there is nothing to do. Safe to call again after a crash:
    nothing is written until the new round is inserted, in one transaction.
    """
    rounds = project.round_config
    queue, state = project.queue, project.training
    with project.db.connect() as conn:
        latest = queue.round_ready(conn)
        if latest is None:
            return None
        ids, codes = project.labeled_set(conn)
        queued = queue.queued_ids(conn)
    r = latest["round"] + 1
    seed = rounds.seed
    state.set("training", r, 0.0)
    X = project.pool_array()
    labeled = (ids - 1).tolist()
    n_classes = len(project.classes)
    budget = project.budget()
    with torch_threads(rounds.torch_threads):
        est = build_estimator(rounds, n_classes)
        if project.score_scheduler is not None:
            est.set_params(scheduler=project.score_scheduler)
        n_epochs = est.epochs_for(len(labeled))
        key = str(project.path)
        EpochProgress.register(key, state)
        est.set_params(callbacks=list(est.callbacks) + [
            ("labeling_progress", EpochProgress(key, n_epochs))])
        learner = ActiveLearner(est, query_strategy=STRATEGIES[rounds.strategy])
        t0 = time.perf_counter()
        learner.fit(X[labeled], codes)
        fit_time = time.perf_counter() - t0
        state.set("querying", r, None)
        stop_pred = learner.predict(take_rows(X, np.asarray(project.stop_set) - 1))
        n_next = max(0, min(rounds.query_size, budget - len(queued), len(X) - len(queued)))
        exclude = (np.asarray(queued, dtype=np.int64) - 1).tolist()
        queried, scores, query_time = [], None, None
        if n_next > 0:
            # same seed as the simulation's round r - 1 (its round 0 fits the initial set)
            queried, scores, query_time = query_round(
                learner, X, exclude, n_next, rounds, round_seed(seed, r - 1))
    project.model_store.save(r, learner.estimator_)
    counts = np.bincount(codes, minlength=n_classes).tolist()
    with project.db.connect() as conn, transaction(conn):
        if queue.has_round(conn, r):
            return None  # another process made it meanwhile
        # reserve images handed out while training are queued already and count
        # against the budget
        now = set(queue.queued_ids(conn))
        keep = [k for k, q in enumerate(queried) if q + 1 not in now][:max(0, budget - len(now))]
        queried = [queried[k] for k in keep]
        scores = None if scores is None else [scores[k] for k in keep]
        queue.insert_round(conn, r, rounds.strategy, [q + 1 for q in queried], scores, [],
                           len(labeled), counts, fit_time, query_time, stop_pred)
    project.model_store.remember(r, learner.estimator_)
    exclude = sorted({i - 1 for i in now} | set(queried))
    reserve_n = min(project.config["reserve_size"], len(X) - len(exclude))
    if queried and reserve_n > 0:
        state.set("querying", r, None)
        with torch_threads(rounds.torch_threads):
            reserve, _, _ = query_round(
                learner, X, exclude, reserve_n, rounds,
                int(np.random.SeedSequence([seed, r, 1]).generate_state(1)[0]))
        with project.db.connect() as conn, transaction(conn):
            queue.set_reserve(conn, r, [q + 1 for q in reserve])
    state.set("idle", r)
    state.notify(project)  # a further batch may already be complete (reserve labels)
    return r


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
    proba = np.asarray(model.predict_proba(X[image_id - 1:image_id]))[0]
    return {"class": project.classes[int(np.argmax(proba))],
            "probabilities": {c: float(p) for c, p in zip(project.classes, proba)}}

"""A project's view of its pool: an encoder trained once on the unlabeled images.

A project whose round configuration has ``model="view"`` (the default of new
projects) trains an encoder on its whole image cache at ``init``
(:func:`skal_cxr.engine.pool_view`, with a progress bar), and each labeling
round then fits only a small MC Dropout head on the encoder's features
(:class:`~skal_cxr.FrozenViewClassifier`). The fitted encoder is pickled to
``view/encoder-<fingerprint>.pkl`` in the project folder, named by the
content fingerprint of the pool it was trained on and of the encoder's
settings (:func:`~skal_cxr.embeddings.pool_fingerprint`), and ``view/current.json``
names the one the rounds use. Both files are written atomically: a training
killed at any point leaves the previous view in use, and a second
``init`` (or :func:`train_view`) on the same pool loads the file instead of
training again.

The worker process receives the encoder's *path* in its job and loads it
once (:func:`load_view`): the encoder object lives as long as the process,
so the features of each pool image are computed once per encoder
(:func:`~skal_cxr.embeddings.memoized_transform`), not once per round.

Images pulled into the pool later are seen through the view they were not
trained on; :func:`view_advice` says when enough have arrived
(:data:`RETRAIN_VIEW_FRACTION`) that :func:`train_view` should run again
(``skal-cxr label retrain-view``). Every round's checkpoint holds the
encoder it was fitted with, so the checkpoints of earlier rounds still load
after a retrain.
"""

import json
import pickle
import time
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write, replacing
from ..._image_checks import check_images
from .._settings import view_dir

__all__ = [
    "RETRAIN_VIEW_FRACTION",
    "uses_view",
    "view_info",
    "view_file",
    "train_view",
    "load_view",
    "loaded_views",
    "view_advice",
    "retrain_view",
]

#: Retrain the view once the images added since it was trained exceed this
#: fraction of the images it was trained on (0.2: more than 20 % new images).
RETRAIN_VIEW_FRACTION = 0.2

_CURRENT = "current.json"
# The embeddings (torch) are imported inside the functions that compute features:
# the server's training thread reads this module (the view's file) and must not
# import torch, which would hold the interpreter for seconds while raters label.
# encoder file -> fitted encoder: the one view this process uses (the worker's)
_LOADED: dict[str, list] = {}  # file -> [encoder, pool features remembered]


def uses_view(config):
    """Whether a round configuration fits a head on the project's view.

    Parameters
    ----------
    config : RoundConfig
        The project's round configuration.

    Returns
    -------
    view : bool
        ``config.model == "view"`` (configurations without a model: False).
    """
    return getattr(config, "model", "cnn") == "view"


def view_info(path):
    """What ``view/current.json`` of the project in ``path`` says, or None without a view.

    Parameters
    ----------
    path : path-like
        The project folder.

    Returns
    -------
    info : dict or None
        ``file`` (the encoder's file name in ``view/``), ``fingerprint``
        (of the pool it was trained on), ``n_images`` (of that pool),
        ``seconds`` and ``cpu_seconds`` (its training's wall-clock and
        process CPU time; 0 when it was loaded) and ``trained_at`` (UTC,
        ISO 8601).
    """
    try:
        info = json.loads((view_dir(path) / _CURRENT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "file" in info else None


def view_file(path):
    """The encoder file the rounds of the project in ``path`` use, or None.

    Parameters
    ----------
    path : path-like
        The project folder.

    Returns
    -------
    file : str or None
        Absolute path of ``view/encoder-<fingerprint>.pkl``; None when the
        project has no view.
    """
    info = view_info(path)
    if info is None:
        return None
    return str((view_dir(path) / info["file"]).resolve())


def _fit(X, config, progress):
    """The engine's encoder of the pool ``X`` (trained now)."""
    from ...engine import pool_view

    return pool_view(X, config, progress=progress)


def train_view(path, image_size, n_images, config, *, progress=False):
    """Train (or load) the view of the project's pool and make the rounds use it.

    The pool is the project's image cache at the training resolution
    (:func:`~._pool.open_pool`). When ``view/`` already holds the
    encoder of this pool's content fingerprint (and of the configuration's
    ``view`` settings), it is used as it is;
    otherwise :func:`skal_cxr.engine.pool_view` trains one, which is pickled
    atomically to ``view/encoder-<fingerprint[:16]>.pkl``. Then
    ``view/current.json`` names it.

    Parameters
    ----------
    path : path-like
        The project folder.
    image_size : (int, int)
        The training resolution (of the image cache).
    n_images : int
        Images of the project.
    config : RoundConfig
        The project's round configuration (the encoder's seed and settings).
    progress : bool, default=False
        Show a progress bar of the training (tqdm, on the terminal).

    Returns
    -------
    info : dict
        The new ``current.json`` (see :func:`view_info`).
    """
    from ...embeddings import memoized_transform, pool_fingerprint
    from ...engine import view_encoder
    from ..store._pool import open_pool

    X = open_pool(path, image_size, n_images)
    fingerprint = pool_fingerprint(X, view_encoder(config))
    folder = view_dir(path)
    name = f"encoder-{fingerprint[:16]}.pkl"
    meta = folder / f"encoder-{fingerprint[:16]}.json"
    seconds = cpu_seconds = 0.0
    if _stored(folder / name, meta, fingerprint):
        saved = json.loads(meta.read_text(encoding="utf-8"))
        encoder = load_view(folder / name)
    else:
        start, cpu = time.perf_counter(), time.process_time()
        encoder = _fit(X, config, progress)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        folder.mkdir(exist_ok=True)
        with replacing(folder / name) as tmp, open(tmp, "wb") as fh:
            pickle.dump(encoder, fh, protocol=pickle.HIGHEST_PROTOCOL)
        saved = {
            "fingerprint": fingerprint,
            "n_images": int(n_images),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
        }
        atomic_write(meta, json.dumps(saved, indent=1))
    features = _features_file(folder / name)
    if "features_of" not in saved or not features.is_file():
        # the pool's features, once: the cold start reads them, the worker loads them
        with replacing(features) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.concatenate([memoized_transform(encoder, x) for x in _chunks(X)]))
        saved["features_of"] = pool_fingerprint(X)
        atomic_write(meta, json.dumps(saved, indent=1))
    _LOADED.clear()
    _LOADED[str((folder / name).resolve())] = [encoder, True]
    info = {
        "file": name,
        "fingerprint": fingerprint,
        "n_images": int(n_images),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write(folder / _CURRENT, json.dumps(info, indent=1))
    return info


def _stored(file, meta, fingerprint):
    """Whether ``file`` holds the encoder of the pool ``fingerprint`` (its ``.json`` says so)."""
    try:
        return (
            file.is_file()
            and json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
        )
    except (OSError, ValueError, AttributeError):
        return False


def _features_file(file):
    """``encoder-<fingerprint>.features.npy`` beside ``encoder-<fingerprint>.pkl``."""
    return Path(file).with_suffix(".features.npy")


def load_view(file, X=None):
    """The fitted encoder in ``file``, loaded once per process, with the pool's features.

    The process keeps the last encoder it loaded (the worker's view), so the
    features it computes are remembered across rounds; loading another file
    (after a retrain) drops the previous one. Given the pool ``X``, the
    features :func:`train_view` stored for it are handed to
    :func:`~skal_cxr.embeddings.memoized_transform` once (when the first
    images of ``X`` are still those they were computed from), so no round
    computes them again.

    Parameters
    ----------
    file : path-like
        An encoder file written by :func:`train_view` (a pickle: only the
        project's own files).
    X : array-like of shape (n_images, 1, H, W) or None, default=None
        The project's pool now (images pulled since come after the others).

    Returns
    -------
    encoder : transformer
        Fitted.
    """
    key = str(Path(file).resolve())
    entry = _LOADED.get(key)
    if entry is None:
        with open(key, "rb") as fh:
            entry = [pickle.load(fh), False]
        _LOADED.clear()
        _LOADED[key] = entry
    if X is not None and not entry[1]:
        entry[1] = True
        _remember(entry[0], key, X)
    return entry[0]


def loaded_views():
    """The encoder file this process holds, if any, and whether it has the pool's features.

    Returns
    -------
    views : dict
        Encoder file -> whether the pool's stored features were handed to
        the feature memory (see :func:`load_view`).
    """
    return {file: remembered for file, (_, remembered) in _LOADED.items()}


def _remember(encoder, file, X):
    """Hand the stored features of the pool's first images to the feature memory."""
    from ...embeddings import pool_fingerprint, remember_features

    try:
        meta = json.loads(Path(file).with_suffix(".json").read_text(encoding="utf-8"))
        features = np.load(_features_file(file))
    except (OSError, ValueError):
        return  # none stored: computed as the rounds need them
    n = len(features)
    if len(X) >= n and meta.get("features_of") == pool_fingerprint(X[:n]):
        start = 0
        for x in _chunks(X[:n]):
            remember_features(encoder, x, features[start : start + len(x)])
            start += len(x)


def _chunks(X, size=2048):
    """The images of ``X`` as the classifier sees them (float32 in [0, 1]), chunk by chunk.

    The feature memory knows an image by its bytes as the classifier hands
    them to the encoder (:func:`~skal_cxr._image_checks.check_images`).
    """
    for start in range(0, len(X), size):
        yield check_images(np.asarray(X[start : start + size]), allow_dataset=False)


def view_advice(path, n_images):
    """One line saying that the view should be retrained, or None.

    Parameters
    ----------
    path : path-like
        The project folder.
    n_images : int
        Images of the project now.

    Returns
    -------
    line : str or None
        Set when the images added since the view was trained are more than
        :data:`RETRAIN_VIEW_FRACTION` of those it was trained on; None
        otherwise and for projects without a view.
    """
    info = view_info(path)
    if info is None:
        return None
    trained = int(info["n_images"])
    new = int(n_images) - trained
    if new <= RETRAIN_VIEW_FRACTION * trained:
        return None
    return (
        f"The pool has {new} images more than the {trained} its view was trained on "
        f"(over {RETRAIN_VIEW_FRACTION:.0%}): retrain it with "
        f"`skal-cxr label retrain-view {path}` (or `label pull --retrain-view`)."
    )


def retrain_view(project, *, progress=False):
    """Train the view of a project's pool as it is now; later rounds use it.

    For a pool that grew since its view was trained (see
    :func:`view_advice`). The image cache is brought up to date first. The
    checkpoints of earlier rounds keep the encoder they were fitted with.

    Parameters
    ----------
    project : LabelingProject
        A project of the view model.
    progress : bool, default=False
        Show a progress bar of the training.

    Returns
    -------
    info : dict
        The new view (see :func:`view_info`).

    Raises
    ------
    LabelingError
        For a project that trains the CNN (it has no view).
    """
    from ...exceptions import LabelingError

    if not uses_view(project.round_config):
        raise LabelingError(f"{project.path} trains the CNN each round; it has no view to retrain.")
    n = len(project.pool_array())  # builds or checks the image cache of every image
    return train_view(
        project.path, project.config["image_size"], n, project.round_config, progress=progress
    )

"""An embedding computed once per pool and kept on disk."""

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
from sklearn.base import clone

from .._atomic import atomic_write, replacing
from ._pca import is_fitted

__all__ = ["pool_fingerprint", "cached_embedding", "cached_fit", "load_fitted", "store_fitted"]


def pool_fingerprint(X, transformer=None):
    """A SHA-256 hex digest of a pool's images (and of a transformer's parameters).

    Parameters
    ----------
    X : array-like of shape (n_images, ...)
        The pool; its shape, dtype and bytes are hashed in chunks.
    transformer : estimator or None, default=None
        Its class name and ``get_params(deep=False)`` are hashed too, so two
        views of one pool get different fingerprints.

    Returns
    -------
    fingerprint : str
        64 hexadecimal characters.
    """
    if not (hasattr(X, "shape") and hasattr(X, "dtype")):
        X = np.asarray(X)
    # chunk by chunk: a lazily read pool (an on-disk image cache) is never loaded whole
    digest = hashlib.sha256(f"{tuple(X.shape)}|{np.dtype(X.dtype).str}".encode())
    for start in range(0, len(X), 4096):
        digest.update(np.ascontiguousarray(X[start : start + 4096]).tobytes())
    if transformer is not None:
        params = sorted((k, repr(v)) for k, v in transformer.get_params(deep=False).items())
        digest.update(f"{type(transformer).__name__}|{params}".encode())
    return digest.hexdigest()


def cached_embedding(transformer, X, cache_dir, *, name="embedding"):
    """The embedding of a pool, computed once and kept in ``cache_dir``.

    The file ``<cache_dir>/<name>-<fingerprint[:16]>.npy`` holds
    ``clone(transformer).fit_transform(X)`` (float32), beside a ``.json``
    with the full fingerprint and the transformer's parameters. A later call
    with the same pool and parameters loads it without fitting; another pool
    or other parameters get another file. A transformer that is already
    fitted is used as it is (``transform`` only).

    Parameters
    ----------
    transformer : estimator
        :class:`PixelPCA`, :class:`ContrastiveEncoder` or any transformer.
    X : array-like of shape (n_images, ...)
        The pool.
    cache_dir : path-like
        A folder, created if needed (for example the image cache's folder).
    name : str, default="embedding"
        Prefix of the file name.

    Returns
    -------
    features : ndarray of shape (n_images, n_features), dtype float32
        One row per image of ``X``, in order.
    """
    cache_dir = Path(cache_dir)
    fitted = is_fitted(transformer)
    fingerprint = pool_fingerprint(X, transformer)
    if fitted:  # a fitted transformer's weights are not in its parameters
        fingerprint = hashlib.sha256(
            (fingerprint + _fitted_digest(transformer)).encode()
        ).hexdigest()
    path = cache_dir / f"{name}-{fingerprint[:16]}.npy"
    meta = path.with_suffix(".json")
    features = _read(path, meta, fingerprint)
    if features is not None and len(features) == len(X):
        return features
    model = transformer if fitted else clone(transformer).fit(X)
    features = np.asarray(model.transform(X), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, features)
    _write_meta(meta, fingerprint, transformer, shape=list(features.shape))
    return features


def cached_fit(transformer, X, cache_dir, *, name="encoder"):
    """A clone of ``transformer`` fitted on the pool ``X`` once, kept in ``cache_dir``.

    An encoder trained on the unlabeled pool (a :class:`ContrastiveEncoder`:
    about 40 CPU seconds on PneumoniaMNIST's 4,708 images) is trained once
    per pool and parameters: the fitted transformer is pickled to
    ``<cache_dir>/<name>-<fingerprint[:16]>.pkl`` beside a ``.json`` with the
    fingerprint (:func:`pool_fingerprint` of the pool and the parameters),
    and a later call with the same pool and parameters loads it. Load only
    cache folders you wrote yourself: a pickle can run code.

    Parameters
    ----------
    transformer : estimator
        An unfitted transformer; it is cloned, never changed.
    X : array-like of shape (n_images, ...)
        The pool.
    cache_dir : path-like
        A folder, created if needed.
    name : str, default="encoder"
        Prefix of the file name.

    Returns
    -------
    fitted : estimator
        ``clone(transformer).fit(X)``, or the same loaded from the cache.
    """
    cache_dir = Path(cache_dir)
    fingerprint = pool_fingerprint(X, transformer)
    path = cache_dir / f"{name}-{fingerprint[:16]}.pkl"
    meta = path.with_suffix(".json")
    fitted = load_fitted(path, meta, fingerprint, type(transformer))
    if fitted is None:  # missing, cut short or not ours: fit again
        fitted = clone(transformer).fit(X)
        store_fitted(fitted, transformer, path, meta, fingerprint)
    return fitted


def load_fitted(path, meta, fingerprint, kind):
    """The fitted transformer pickled at ``path`` for ``fingerprint``, or None.

    Parameters
    ----------
    path, meta : Path
        The pickle and the JSON beside it (see :func:`store_fitted`).
    fingerprint : str
        What ``meta`` must name (:func:`pool_fingerprint`).
    kind : type
        The transformer's class; anything else is not ours.

    Returns
    -------
    fitted : estimator or None
        None when a file is missing or cut short, names another
        fingerprint, or holds something else than a fitted ``kind``.
    """
    try:
        if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
            return None
        with open(path, "rb") as fh:
            fitted = pickle.load(fh)
    except (OSError, ValueError, AttributeError, EOFError, pickle.UnpicklingError):
        return None
    return fitted if type(fitted) is kind and is_fitted(fitted) else None


def store_fitted(fitted, transformer, path, meta, fingerprint, **extra):
    """Pickle ``fitted`` to ``path`` and describe it in ``meta``, each atomically.

    Parameters
    ----------
    fitted : estimator
        The fitted transformer.
    transformer : estimator
        The unfitted one it was cloned from (its class and parameters are
        written to ``meta``).
    path, meta : Path
        The pickle and the JSON beside it; their folder is created.
    fingerprint : str
        Written to ``meta``; :func:`load_fitted` checks it.
    **extra
        More JSON fields of ``meta``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(fitted, fh)
    _write_meta(meta, fingerprint, transformer, **extra)


def _write_meta(meta, fingerprint, transformer, **extra):
    """Write the JSON ``meta`` beside a cached file: what it was computed from and by."""
    fields = {
        "fingerprint": fingerprint,
        "transformer": type(transformer).__name__,
        "params": {k: repr(v) for k, v in transformer.get_params(deep=False).items()},
        **extra,
    }
    atomic_write(meta, json.dumps(fields, indent=1))


def _read(path, meta, fingerprint):
    """The cached features, or None when missing, of another pool, or unreadable."""
    try:
        if json.loads(meta.read_text(encoding="utf-8")).get("fingerprint") != fingerprint:
            return None
        return np.load(path)
    except (OSError, ValueError, AttributeError):  # missing, cut short, not ours
        return None


def _fitted_digest(transformer):
    """A digest of a fitted transformer's whole state (fitted arrays, weights)."""
    return hashlib.sha256(pickle.dumps(transformer)).hexdigest()

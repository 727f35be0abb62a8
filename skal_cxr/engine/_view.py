"""The pool's view: a contrastive encoder trained once per pool, without labels.

With ``model="view"`` (the default of new configurations), a round's
estimator is a :class:`~skal_cxr.FrozenViewClassifier`: an MC Dropout head
on the features of a :class:`~skal_cxr.embeddings.ContrastiveEncoder` that
was trained on the whole pool (labeled or not) and is then frozen.
:func:`pool_view` gives that encoder; it is trained once per pool content
and view settings, kept in memory for the life of the process and, with a
``cache_dir``, on disk.
"""

import sys
import time
from collections import OrderedDict
from pathlib import Path

from ..embeddings import ContrastiveEncoder, load_fitted, pool_fingerprint, store_fitted
from ._config import _round_config

__all__ = ["pool_view", "view_encoder", "view_files", "VIEW_FILE_PREFIX"]

#: Prefix of the encoder files :func:`pool_view` writes in its ``cache_dir``.
VIEW_FILE_PREFIX = "view"

#: Fitted encoders of this process, by fingerprint (the last few pools).
_MEMO: "OrderedDict[str, ContrastiveEncoder]" = OrderedDict()
_MEMO_SIZE = 4


def view_encoder(config):
    """The unfitted :class:`~skal_cxr.embeddings.ContrastiveEncoder` of a configuration.

    Parameters
    ----------
    config : RoundConfig or mapping
        Its ``view`` settings are the encoder's parameters.

    Returns
    -------
    encoder : ContrastiveEncoder
        Unfitted, silent (``verbose=0``).
    """
    config = _round_config(config)
    return ContrastiveEncoder(**dict(config.view), verbose=0)


def _paths(cache_dir, fingerprint):
    path = Path(cache_dir) / f"{VIEW_FILE_PREFIX}-{fingerprint[:16]}.pkl"
    return path, path.with_suffix(".json")


def view_files(X_pool, config, cache_dir):
    """The files :func:`pool_view` writes in ``cache_dir`` for this pool and configuration.

    Parameters
    ----------
    X_pool : array-like of shape (n_images, 1, H, W)
        The whole pool.
    config : RoundConfig or mapping
        The round configuration.
    cache_dir : path-like
        The cache folder.

    Returns
    -------
    paths : list of Path
        The pickled encoder, its ``.json`` description and the lock file
        that makes processes sharing the folder train it once.
    """
    fingerprint = pool_fingerprint(X_pool, view_encoder(config))
    path, meta = _paths(cache_dir, fingerprint)
    return [path, meta, path.with_suffix(".lock")]


def _load(cache_dir, fingerprint):
    """The encoder cached for this fingerprint, or None (missing, cut short, not ours)."""
    return load_fitted(*_paths(cache_dir, fingerprint), fingerprint, ContrastiveEncoder)


def _save(fitted, encoder, cache_dir, fingerprint):
    store_fitted(
        fitted,
        encoder,
        *_paths(cache_dir, fingerprint),
        fingerprint,
        fit_time=fitted.fit_time_,
        fit_cpu_time=fitted.fit_cpu_time_,
    )


def _train(encoder, X_pool, progress):
    if progress is None:
        progress = sys.stderr is not None and sys.stderr.isatty()
    fitted = encoder.set_params(verbose=int(bool(progress)))
    t0, c0 = time.perf_counter(), time.process_time()
    fitted.fit(X_pool)
    fitted.set_params(verbose=0)
    fitted.fit_time_ = time.perf_counter() - t0
    fitted.fit_cpu_time_ = time.process_time() - c0
    return fitted


def pool_view(X_pool, config, cache_dir=None, progress=None):
    """The pool's fitted encoder: trained once per pool content, without labels.

    The encoder (:func:`view_encoder`: a
    :class:`~skal_cxr.embeddings.ContrastiveEncoder` with the
    configuration's ``view`` settings) is trained on every image of
    ``X_pool``, labeled or not; no label is read. It is identified by the
    fingerprint of the pool's content and of those settings
    (:func:`~skal_cxr.embeddings.pool_fingerprint`): a second call with the
    same pool and settings returns the same encoder without training, from
    this process's memory or from ``cache_dir``
    (``view-<fingerprint[:16]>.pkl`` beside a ``.json``; load only folders
    you wrote yourself: a pickle can run code). Processes sharing a
    ``cache_dir`` train it once: the others wait for it (a file lock).

    Parameters
    ----------
    X_pool : array-like of shape (n_images, 1, H, W)
        The whole pool.
    config : RoundConfig or mapping
        The round configuration; its ``view`` settings are used.
    cache_dir : path-like or None, default=None
        Keep the encoder in this folder (created if needed); ``None``: in
        this process's memory only.
    progress : bool or None, default=None
        Show a progress bar of the training steps; ``None``: only when
        standard error is a terminal.

    Returns
    -------
    encoder : ContrastiveEncoder
        Fitted. ``fit_time_`` and ``fit_cpu_time_`` hold the seconds (wall
        clock and process CPU) its training took, when it was trained.
    """
    encoder = view_encoder(config)
    fingerprint = pool_fingerprint(X_pool, encoder)
    fitted = _MEMO.get(fingerprint)
    if fitted is None:
        if cache_dir is None:
            fitted = _train(encoder, X_pool, progress)
        else:
            from filelock import FileLock

            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            # processes sharing the folder (a simulation's workers) train it once
            with FileLock(_paths(cache_dir, fingerprint)[0].with_suffix(".lock")):
                fitted = _load(cache_dir, fingerprint)
                if fitted is None:
                    fitted = _train(encoder, X_pool, progress)
                    _save(fitted, view_encoder(config), cache_dir, fingerprint)
    _MEMO[fingerprint] = fitted
    _MEMO.move_to_end(fingerprint)
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return fitted

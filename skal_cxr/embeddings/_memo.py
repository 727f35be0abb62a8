"""Features of a fitted encoder computed once per image, kept in memory.

An active-learning loop asks a frozen view for the features of a shrinking
pool at every query; :func:`memoized_transform` keys each image by a digest
of its bytes, so only images never seen by that fitted encoder go through
it. The memory lives as long as the encoder object and is dropped when the
encoder is fitted again.
"""

import hashlib
import weakref

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._pca import is_fitted

__all__ = ["memoized_transform", "remember_features", "MemoizedView"]

# encoder -> (state token, {image key: feature row})
_MEMORY = weakref.WeakKeyDictionary()


def _state_token(encoder):
    """Identities of the fitted attributes: they change when the encoder is refitted."""
    inner = getattr(encoder, "estimator", encoder)  # sklearn.frozen.FrozenEstimator
    return tuple(
        (k, id(v)) for k, v in sorted(vars(inner).items()) if k.endswith("_") and k[0] != "_"
    )


def _keys(X):
    X = np.asarray(X)
    prefix = f"{X.dtype.str}|{X.shape[1:]}".encode()
    return [hashlib.blake2b(prefix + row.tobytes(), digest_size=16).digest() for row in X]


def memoized_transform(encoder, X):
    """``encoder.transform(X)``, computing only images the encoder has not seen.

    Parameters
    ----------
    encoder : transformer
        A fitted transformer (possibly wrapped in
        :class:`sklearn.frozen.FrozenEstimator`); its results are remembered
        per image, for as long as the object lives and is not refitted.
    X : array-like of shape (n_images, ...)
        Images.

    Returns
    -------
    features : ndarray of shape (n_images, n_features), dtype float32
        Row ``i`` is the encoder's features of image ``i``.
    """
    X = np.asarray(X)
    token = _state_token(encoder)
    saved = _MEMORY.get(encoder)
    if saved is None or saved[0] != token:
        saved = (token, {})
        _MEMORY[encoder] = saved
    rows = saved[1]
    keys = _keys(X)
    missing = [i for i, key in enumerate(keys) if key not in rows]
    if missing:
        new = np.asarray(encoder.transform(X[missing]), dtype=np.float32)
        for i, row in zip(missing, new):
            rows[keys[i]] = row
    return np.stack([rows[key] for key in keys]).astype(np.float32, copy=False)


def remember_features(encoder, X, features):
    """Give :func:`memoized_transform` the features of ``X`` computed earlier by ``encoder``.

    For features kept on disk: a later process that loads the same fitted
    encoder need not compute them again.

    Parameters
    ----------
    encoder : transformer
        The fitted transformer that computed ``features``.
    X : array-like of shape (n_images, ...)
        The images.
    features : array-like of shape (n_images, n_features)
        ``encoder.transform(X)``, row for row.
    """
    X, features = np.asarray(X), np.asarray(features, dtype=np.float32)
    if len(X) != len(features):
        raise ValueError(f"{len(X)} images but {len(features)} feature rows.")
    token = _state_token(encoder)
    saved = _MEMORY.get(encoder)
    if saved is None or saved[0] != token:
        saved = (token, {})
        _MEMORY[encoder] = saved
    saved[1].update(zip(_keys(X), features))


class MemoizedView(TransformerMixin, BaseEstimator):
    """A fitted encoder whose features are computed once per image.

    Parameters
    ----------
    encoder : transformer
        A fitted transformer (used as it is), or an unfitted one (fitted by
        :meth:`fit`, once).

    Attributes
    ----------
    encoder_ : transformer
        The fitted encoder whose features are remembered.

    See Also
    --------
    memoized_transform : The per-image memory.
    """

    def __init__(self, encoder):
        self.encoder = encoder

    def fit(self, X, y=None):
        """Use the encoder as it is when fitted, else fit it on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, ...)
            Images (unused for a fitted encoder; an unfitted one is cloned and
            fitted on them).
        y : None
            Ignored.

        Returns
        -------
        self : MemoizedView
            Fitted.
        """
        self.encoder_ = self.encoder if is_fitted(self.encoder) else clone(self.encoder).fit(X)
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "encoder_") or is_fitted(self.encoder)

    def transform(self, X):
        """The encoder's features, computed once per image.

        Parameters
        ----------
        X : array-like of shape (n_images, ...)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features), dtype float32
            One row per image.
        """
        check_is_fitted(self)
        return memoized_transform(getattr(self, "encoder_", self.encoder), X)

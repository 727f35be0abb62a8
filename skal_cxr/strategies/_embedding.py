"""Features of the pool and of the labeled set for the low-budget strategies.

Typicality and ProbCover need no model: they choose in a *view* of the
images, given by the strategy's ``embedding`` argument:

* ``"pca"`` (the default): :class:`~skal_cxr.embeddings.PixelPCA` with 50
  components, fitted at each query on the candidates and the labeled images
  (under a second for 5,000 images of 28x28 pixels);
* a scikit-learn transformer, such as a fitted
  :class:`~skal_cxr.embeddings.ContrastiveEncoder`: used as it is when
  fitted, else cloned and fitted on the candidates and the labeled images;
* ``"network"``: the fitted network's penultimate features (``embed``);
* ``"precomputed"``: ``X_pool`` and the labeled images already are feature
  vectors of shape ``(n_images, n_features)``.

The labeled images are the ``X_labeled`` argument when given, else the
learner's labeled set: ``X_training_`` (skal_cxr's
:class:`~skal_cxr.ActiveLearner`), else ``X_training`` (modAL's learner, or a
skal_cxr learner not fitted yet); ``None`` or empty: nothing is labeled yet.
"""

import numpy as np
from sklearn.base import clone
from torch.utils.data import Dataset

from .._validation import check_images
from ..embeddings import PixelPCA, is_fitted

__all__ = ["EMBEDDING_DOC", "labeled_images", "embed_candidates"]

EMBEDDING_DOC = """    embedding : "pca", "network", "precomputed" or transformer, default="pca"
        The view in which images are compared: ``"pca"`` fits 50 principal
        components of the pixels on the candidates and labeled images;
        a transformer (e.g. a fitted
        :class:`~skal_cxr.embeddings.ContrastiveEncoder`) is used as it is
        when fitted, else cloned and fitted on them; ``"network"`` uses the
        fitted network's ``embed``; ``"precomputed"`` takes ``X_pool`` and
        ``X_labeled`` as feature arrays.
    X_labeled : array-like of shape (n_labeled, ...) or None, default=None
        The images labeled so far; ``None`` takes the learner's
        ``X_training_``, else ``X_training`` (nothing labeled without them).
"""


def labeled_images(learner, X_labeled=None):
    """The labeled images: ``X_labeled``, else the learner's labeled set, or ``None``.

    Parameters
    ----------
    learner : object
        A learner, an estimator or anything; its ``X_training_`` (skal_cxr's
        fitted learner), else ``X_training`` (modAL) is read.
    X_labeled : array-like or None, default=None
        Overrides the learner's labeled images.

    Returns
    -------
    X_labeled : array-like or None
        ``None`` when nothing is labeled.
    """
    if X_labeled is None:
        X_labeled = getattr(learner, "X_training_", None)
    if X_labeled is None:
        X_labeled = getattr(learner, "X_training", None)
    if X_labeled is None or len(X_labeled) == 0:
        return None
    return X_labeled


def _as_images(X, name):
    if isinstance(X, Dataset):
        raise TypeError(
            f"{name} is a torch Dataset; the label-free strategies need an array of "
            "images (or embedding='precomputed' with feature arrays)."
        )
    return check_images(X, allow_dataset=False, name=name)


def _as_features(X, name):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(
            f"embedding='precomputed' needs {name} of shape (n_images, n_features); "
            f"got shape {X.shape}."
        )
    return X


def embed_candidates(ctx, embedding="pca", X_labeled=None):
    """Features of the query's candidates and of the labeled images.

    Parameters
    ----------
    ctx : QueryContext
        The query (candidates ``ctx.X``, the learner, the random generator).
    embedding : str or transformer, default="pca"
        See the module docstring.
    X_labeled : array-like or None, default=None
        See :func:`labeled_images`.

    Returns
    -------
    pool_features : ndarray of shape (n_candidates, n_features)
        One row per candidate.
    labeled_features : ndarray of shape (n_labeled, n_features)
        Zero rows when nothing is labeled.
    """
    labeled = labeled_images(ctx.learner, X_labeled)
    if isinstance(embedding, str):
        if embedding == "precomputed":
            pool = _as_features(ctx.X, "X_pool")
            lab = (
                np.empty((0, pool.shape[1]))
                if labeled is None
                else _as_features(labeled, "X_labeled")
            )
            if lab.shape[1] != pool.shape[1]:
                raise ValueError(
                    f"X_labeled has {lab.shape[1]} features and X_pool {pool.shape[1]}."
                )
            return pool, lab
        if embedding == "network":
            pool = ctx.features()
            lab = np.empty((0, pool.shape[1])) if labeled is None else ctx.features(labeled)
            return pool, lab
        if embedding != "pca":
            raise ValueError(
                f"{ctx.name}: embedding must be 'pca', 'network', 'precomputed' or a "
                f"transformer; got {embedding!r}."
            )
        embedding = PixelPCA(
            n_components=50, random_state=int(ctx.rng.integers(np.iinfo(np.int32).max))
        )
    if not hasattr(embedding, "transform"):
        raise TypeError(
            f"{ctx.name}: embedding must be a string or a transformer with fit and "
            f"transform; got {type(embedding).__name__}."
        )
    pool = _as_images(ctx.X, "X_pool")
    lab = None if labeled is None else _as_images(labeled, "X_labeled")
    if not is_fitted(embedding):
        both = pool if lab is None else np.concatenate([pool, lab])
        embedding = clone(embedding).fit(both)
    pool_features = np.asarray(embedding.transform(pool), dtype=np.float64)
    lab_features = (
        np.empty((0, pool_features.shape[1]))
        if lab is None
        else np.asarray(embedding.transform(lab), dtype=np.float64)
    )
    return pool_features, lab_features

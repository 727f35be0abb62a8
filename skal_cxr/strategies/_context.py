"""The query context: the pool of one query and its lazily computed model outputs.

A :class:`QueryContext` holds the (optionally subsampled) pool, the fitted
estimator, the random generator and the Monte Carlo samples, computed at most
once per query and shared by every score that needs them.

Monte Carlo samples always have shape ``(n_mc_samples, n_images, n_classes)``.
"""

import numpy as np
from torch.utils.data import Dataset, Subset

from .._pipeline import final_estimator, transform_before_final
from .._random import resolve_rng
from .._validation import check_int

__all__ = ["QueryContext", "fitted_estimator"]


def fitted_estimator(learner):
    """The fitted estimator behind ``learner``.

    ``learner.estimator_`` (skal_cxr's :class:`~skal_cxr.ActiveLearner` keeps
    its fitted clone there), else ``learner.estimator`` (modAL fits that one in
    place), else ``learner`` itself (a bare fitted estimator).
    """
    est = getattr(learner, "estimator_", None)
    if est is None:
        est = getattr(learner, "estimator", None)
    return learner if est is None else est


def _take(X, index):
    if isinstance(X, Dataset):
        return Subset(X, index.tolist())
    return np.asarray(X)[index] if not hasattr(X, "shape") else X[index]


class QueryContext:
    """The pool and lazily computed model outputs of one query.

    Parameters
    ----------
    learner : object
        modAL or skal_cxr learner (or a fitted estimator); see
        :func:`fitted_estimator`.
    X_pool : array-like of shape (n_images, ...) or Dataset
    n_instances : int
    pool_size : int or None, default=None
        Score only a random subset of this many pool images (drawn with the
        query's random generator); ``None`` scores the whole pool.
    n_mc_samples : int or None, default=None
        Monte Carlo samples per image; ``None`` uses the estimator's default.
    random_state : int, RandomState, Generator or None, default=None
        Breaks ties and draws the pool subset; ``None`` takes the learner's,
        else the estimator's ``random_state`` (see :mod:`skal_cxr._random`).
    name : str, default="strategy"
        Strategy name used in error messages.

    Attributes
    ----------
    pool_index : ndarray of shape (n_candidates,)
        Position in ``X_pool`` of every candidate.
    rng : numpy.random.Generator
    chunk_size : int
        Per-image scores of pools larger than this are computed chunk by
        chunk (class attribute, 4096 images), bounding memory by
        ``chunk_size * n_mc_samples * n_classes`` instead of the whole pool's.
    """

    chunk_size = 4096

    def __init__(
        self,
        learner,
        X_pool,
        n_instances,
        *,
        pool_size=None,
        n_mc_samples=None,
        random_state=None,
        name="strategy",
    ):
        self.learner = learner
        self.name = name
        self.estimator = fitted_estimator(learner)
        self.final = final_estimator(self.estimator)
        self.n_mc_samples = n_mc_samples
        self.rng = resolve_rng(random_state, learner, self.final)
        n_pool = len(X_pool)
        if n_pool == 0:
            raise ValueError(f"{name}: X_pool is empty; there is nothing to query.")
        n_instances = check_int(n_instances, "n_instances")
        if n_instances > n_pool:
            raise ValueError(
                f"{name}: n_instances={n_instances} is larger than the pool ({n_pool} images)."
            )
        self.pool_index = np.arange(n_pool)
        if pool_size is not None:
            pool_size = check_int(pool_size, "pool_size", min_val=n_instances)
            if pool_size < n_pool:
                self.pool_index = np.sort(self.rng.choice(n_pool, pool_size, replace=False))
        self.X = X_pool if len(self.pool_index) == n_pool else _take(X_pool, self.pool_index)
        self._cache = {}

    def __len__(self):
        return len(self.pool_index)

    def _cached(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def transform(self, X):
        """``X`` through every pipeline step before the final estimator.

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or Dataset
            Images.

        Returns
        -------
        Xt : array-like or Dataset
            ``X`` itself when the estimator is not a pipeline.
        """
        return transform_before_final(self.estimator, X)

    @property
    def has_mc(self):
        """Whether the estimator can draw Monte Carlo samples."""
        return hasattr(self.final, "predict_proba_samples")

    def mc_samples(self):
        """Monte Carlo probabilities of the candidates, computed once.

        Returns
        -------
        samples : ndarray of shape (n_mc_samples, n_candidates, n_classes), dtype float64
            The estimator's ``predict_proba_samples``.
        """
        self._require_mc()
        return self._cached(
            "samples",
            lambda: np.asarray(
                # positional: estimators of the older protocol name it n_samples
                self.final.predict_proba_samples(self.transform(self.X), self.n_mc_samples),
                dtype=np.float64,
            ),
        )

    def sample_statistic(self, func):
        """``func(samples)`` for a per-image statistic, in bounded memory.

        Pools larger than :attr:`chunk_size` are scored chunk by chunk with
        the estimator's ``reduce_proba_samples`` (when it has one), in the
        same single MC pass that also caches the MC mean; smaller pools reuse
        :meth:`mc_samples`. Statistics of chunked pools are not shared with
        :meth:`subset` contexts, so ``class_balanced`` then samples its
        per-class candidates once more.

        Parameters
        ----------
        func : callable
            Maps samples of shape ``(n_mc_samples, n_images, n_classes)`` to
            an array whose first axis has length ``n_images``.

        Returns
        -------
        statistic : ndarray of shape (n_candidates, ...)
            ``func`` of the candidates' samples.
        """
        if "samples" in self._cache or not self._chunked():
            return func(self.mc_samples())
        score, mean = self.final.reduce_proba_samples(
            self.transform(self.X),
            [lambda s: func(s.astype(np.float64)), lambda s: s.astype(np.float64).mean(axis=0)],
            self.n_mc_samples,
            chunk_size=self.chunk_size,
        )
        self._cache.setdefault("mean", mean)
        return score

    def _chunked(self):
        return len(self) > self.chunk_size and hasattr(self.final, "reduce_proba_samples")

    def _require_mc(self):
        if not self.has_mc:
            raise TypeError(
                f"{self.name} needs Monte Carlo samples, but {type(self.final).__name__} "
                "has no predict_proba_samples method (use skal_cxr.MCDropoutCNN)."
            )

    def mean_probas(self):
        """MC mean probabilities when available, else ``predict_proba``.

        Returns
        -------
        probas : ndarray of shape (n_candidates, n_classes), dtype float64
            Computed once per context.
        """
        if self.has_mc:
            if "samples" in self._cache or not self._chunked():
                return self._cached("mean", lambda: self.mc_samples().mean(axis=0))
            return self._cached("mean", lambda: self.sample_statistic(lambda s: s.mean(axis=0)))
        if not hasattr(self.final, "predict_proba"):
            raise TypeError(
                f"{self.name} needs class probabilities, but {type(self.final).__name__} "
                "has neither predict_proba_samples nor predict_proba."
            )
        return self._cached(
            "mean",
            lambda: np.asarray(self.final.predict_proba(self.transform(self.X)), dtype=np.float64),
        )

    def features(self, X=None):
        """Representations for distances: network embeddings of the candidates (or of ``X``).

        With ``on_transformed=True`` on the learner, the flattened output of
        ``learner.transform_without_estimating`` is used instead.

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or None, default=None
            Images to represent; ``None`` means the candidates (cached).

        Returns
        -------
        features : ndarray of shape (n_images, n_features), dtype float64
            One row per image.
        """
        if X is None:
            return self._cached("features", lambda: self.features(self.X))
        if getattr(self.learner, "on_transformed", False) and hasattr(
            self.learner, "transform_without_estimating"
        ):
            Xt = np.asarray(self.learner.transform_without_estimating(X), dtype=np.float64)
            return Xt.reshape(len(Xt), -1)
        if not hasattr(self.final, "embed"):
            raise TypeError(
                f"{self.name} needs embeddings, but {type(self.final).__name__} has no "
                "embed method (use skal_cxr.MCDropoutCNN, or on_transformed=True)."
            )
        return np.asarray(self.final.embed(self.transform(X)), dtype=np.float64)

    def subset(self, positions):
        """A context over some candidates, sharing the cached model outputs.

        Parameters
        ----------
        positions : array-like of int
            Positions among this context's candidates.

        Returns
        -------
        context : QueryContext
            Over those candidates, in the order of ``positions``.
        """
        positions = np.asarray(positions, dtype=np.intp)
        sub = object.__new__(QueryContext)
        sub.__dict__.update(self.__dict__)
        sub.pool_index = self.pool_index[positions]
        sub.X = _take(self.X, positions)
        axis = {"samples": 1}
        sub._cache = {
            key: np.take(value, positions, axis=axis.get(key, 0))
            for key, value in self._cache.items()
        }
        return sub

"""A modAL-compatible pool-based active learner that scikit-learn can clone."""

from time import perf_counter

import numpy as np
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils.validation import column_or_1d
from torch.utils.data import Dataset, Subset

from ._pipeline import final_estimator, transform_before_final
from ._random import round_rng
from ._validation import HasMethods, accepts_keyword, check_params, dataset_image
from .strategies import is_label_free, max_entropy

__all__ = ["ActiveLearner"]


def _labels(y):
    return column_or_1d(y, warn=True)


def _dense(X, name="X"):
    if issparse(X):
        raise TypeError(f"{name} is a sparse matrix; ActiveLearner takes dense arrays of images.")
    return X


def _rows(X, indices):
    if isinstance(X, Dataset):
        return Subset(X, np.asarray(indices).tolist())
    return X[indices] if hasattr(X, "shape") else np.asarray(X)[indices]


def _images(X):
    """``X`` as an array; a Dataset's images (items or their first element) are stacked.

    Labeled sets are small: they are held in memory, the pool may stay a Dataset.
    """
    if isinstance(X, Dataset):
        images = [dataset_image(X[i]) for i in range(len(X))]
        return np.stack(
            [
                im.detach().cpu().numpy() if hasattr(im, "detach") else np.asarray(im)
                for im in images
            ]
        )
    return np.asarray(X)


def _join(old, new):
    """Labeled images and new ones; ``(H, W)`` and ``(1, H, W)`` images are alike."""
    if (
        old.shape[1:] != new.shape[1:]
        and old.shape[-2:] == new.shape[-2:]
        and (np.prod(old.shape[1:]) == np.prod(new.shape[1:]))
    ):
        new = new.reshape((len(new),) + old.shape[1:])
    if old.shape[1:] != new.shape[1:]:
        raise ValueError(
            f"New images of shape {new.shape[1:]} cannot join the labeled images of "
            f"shape {old.shape[1:]}."
        )
    return np.concatenate([old, new])


class ActiveLearner(ClassifierMixin, BaseEstimator):
    """Pool-based active learner with modAL's interface, safe to clone.

    Like ``modAL.models.ActiveLearner``, but nothing is fitted in
    ``__init__`` and the parameters are never changed: the estimator is
    cloned and fitted on first use (``query``, ``predict``...) when initial
    labeled data were given, or by an explicit :meth:`fit` or :meth:`teach`,
    so :func:`sklearn.base.clone` and
    :class:`~sklearn.model_selection.GridSearchCV` work. The labeled set
    lives in the fitted attributes ``X_training_`` and ``y_training_``. Every
    :meth:`teach` refits a fresh clone on the whole labeled set (the usual
    deep Bayesian active learning protocol), unless the estimator has a
    truthy ``warm_start``: then the fitted network continues training.

    Parameters
    ----------
    estimator : estimator
        A classifier, typically :class:`~skal_cxr.MCDropoutCNN` or a
        :class:`~sklearn.pipeline.Pipeline` ending in one. It is never
        fitted itself.
    query_strategy : callable, default=max_entropy
        ``strategy(learner, X_pool, n_instances=1, **kwargs) -> (indices,
        scores)``, one of :mod:`skal_cxr.strategies` (or made with
        :func:`~skal_cxr.strategies.make_strategy`) or a modAL strategy. A
        strategy returning bare indices is accepted too (no scores then).
    X_training : array-like of shape (n_labeled, ...) or None, default=None
        The initial labeled images, never modified: the labeled set starts
        from them in ``X_training_``, which grows with :meth:`teach` and which
        :meth:`fit` replaces. ``clone`` copies this initial set, not the
        grown one. (modAL's own learner grows ``X_training`` itself; a modAL
        strategy that reads ``learner.X_training``, such as its ranked batch
        sampling, sees only the initial set here.)
    y_training : array-like of shape (n_labeled,) or None, default=None
        The labels of ``X_training``.
    bootstrap_init : bool, default=False
        Fit the first model on a bootstrap resample of the labeled set, drawn
        from ``random_state``.
    on_transformed : bool, default=False
        Distance-based strategies (``coreset``) measure distances in the
        output of :meth:`transform_without_estimating` instead of the
        network's embeddings.
    random_state : int, RandomState instance or None, default=None
        Seeds bootstrap resamples and, through the strategies'
        ``random_state`` argument, tie-breaking and pool subsampling; an int
        gives a different but reproducible stream in each round.
    fit_kwargs : dict or None, default=None
        Passed to ``estimator.fit`` at every fit (modAL's ``**fit_kwargs``,
        as one parameter so that ``clone`` and ``set_params`` handle it).

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    X_training_ : array-like of shape (n_labeled, ...) or Dataset
        The labeled images: ``X_training`` and every image taught since, or
        the images of the last :meth:`fit` and those taught since.
    y_training_ : ndarray of shape (n_labeled,)
        Their labels.
    classes_ : ndarray of shape (n_classes,)
        Class labels of ``estimator_``.
    history_ : list of dict
        One entry per fit (round 0: the initial fit; round ``r``: the refit
        after the ``r``-th :meth:`teach`) with keys ``"round"``,
        ``"n_labeled"``, ``"class_counts"`` (label -> count in the labeled
        set), ``"fit_time"`` and ``"query_time"`` (seconds; ``None`` when no
        query preceded the fit) and ``"query_indices"`` (indices into the
        ``X_pool`` of the last :meth:`query` before this fit, or ``None``).

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr import ActiveLearner, MCDropoutCNN
    >>> from skal_cxr.strategies import bald
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.random((60, 8, 8), dtype=np.float32), np.tile([0, 1], 30)
    >>> learner = ActiveLearner(MCDropoutCNN(max_epochs=1, random_state=0),
    ...                         query_strategy=bald, X_training=X[:10],
    ...                         y_training=y[:10], random_state=0)
    >>> idx, X_query = learner.query(X[10:], n_instances=5)
    >>> learner.teach(X_query, y[10:][idx])
    >>> [entry["n_labeled"] for entry in learner.history_]
    [10, 15]
    >>> len(learner.y_training_), len(learner.y_training)
    (15, 10)
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "query_strategy": [callable],
        "X_training": ["array-like", Dataset, None],
        "y_training": ["array-like", None],
        "bootstrap_init": ["boolean"],
        "on_transformed": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
        "fit_kwargs": [dict, None],
    }

    def __init__(
        self,
        estimator,
        query_strategy=max_entropy,
        X_training=None,
        y_training=None,
        bootstrap_init=False,
        on_transformed=False,
        random_state=None,
        fit_kwargs=None,
    ):
        self.estimator = estimator
        self.query_strategy = query_strategy
        self.X_training = X_training
        self.y_training = y_training
        self.bootstrap_init = bootstrap_init
        self.on_transformed = on_transformed
        self.random_state = random_state
        self.fit_kwargs = fit_kwargs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags = get_tags(self.estimator).input_tags  # the estimator's input,
        tags.input_tags.sparse = False  # densified: images are dense arrays
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "estimator_")

    # -- fitting -------------------------------------------------------------
    def fit(self, X, y, bootstrap=False, **fit_kwargs):
        """Make ``(X, y)`` the labeled set and fit a fresh clone on it.

        Starts a new :attr:`history_` (round 0). ``(X, y)`` becomes
        ``X_training_`` / ``y_training_``; the ``X_training`` and
        ``y_training`` parameters are left as they are.

        Parameters
        ----------
        X : array-like of shape (n_labeled, ...) or Dataset
            The labeled images.
        y : array-like of shape (n_labeled,)
            Their labels.
        bootstrap : bool, default=False
            Fit on a bootstrap resample of ``(X, y)``.
        **fit_kwargs : dict
            Passed to the estimator's ``fit`` this time, over ``fit_kwargs``.

        Returns
        -------
        self : ActiveLearner
        """
        check_params(self)
        self.X_training_, self.y_training_ = X, _labels(y)
        self.history_ = []
        self._pending = None
        return self._fit_labeled(bootstrap=bootstrap, fresh=True, **fit_kwargs)

    def teach(self, X, y, bootstrap=False, only_new=False, **fit_kwargs):
        """Add labeled images and refit (one active-learning round).

        The images join ``X_training_`` (on a learner not fitted yet: the
        ``X_training`` parameter's images, which stay as they are).

        Parameters
        ----------
        X : array-like of shape (n_new, ...) or Dataset
            A Dataset (such as the ``X_query`` of a Dataset pool) has its
            images stacked into the labeled array.
        y : array-like of shape (n_new,)
        bootstrap : bool, default=False
            Fit on a bootstrap resample of the labeled set.
        only_new : bool, default=False
            Continue training the fitted model on ``(X, y)`` only
            (``partial_fit`` when the estimator has it) instead of refitting.
        **fit_kwargs : dict
            Passed to the estimator's ``fit`` this time, over ``fit_kwargs``.
        """
        check_params(self)
        X, y = _images(_dense(X)), _labels(y)
        if len(X) != len(y):
            raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}.")
        fitted = hasattr(self, "estimator_")
        X_old, y_old = (
            (self.X_training_, self.y_training_) if fitted else (self.X_training, self.y_training)
        )
        if X_old is None:
            self.X_training_, self.y_training_ = X, y
        else:  # new arrays: the parameters' arrays are never written to
            self.X_training_ = _join(_images(X_old), X)
            self.y_training_ = np.concatenate([_labels(y_old), y])
        if not fitted:
            self.history_ = []
            self._fit_labeled(bootstrap=bootstrap or self.bootstrap_init, fresh=True, **fit_kwargs)
        elif only_new:
            self._fit_labeled(bootstrap=bootstrap, fresh=False, new=(X, y), **fit_kwargs)
        else:
            warm = bool(getattr(final_estimator(self.estimator), "warm_start", False))
            self._fit_labeled(bootstrap=bootstrap, fresh=not warm, **fit_kwargs)

    def _round_rng(self, purpose):
        """This round's generator for ``purpose`` (0: bootstrap, 1: query)."""
        return round_rng(self.random_state, len(getattr(self, "history_", [])), purpose)

    def _fit_labeled(self, bootstrap, fresh, new=None, **fit_kwargs):
        kwargs = {**(self.fit_kwargs or {}), **fit_kwargs}
        X, y = (self.X_training_, self.y_training_) if new is None else new
        X, y = _images(_dense(X)), _labels(y)
        if bootstrap:
            idx = self._round_rng(0).integers(len(y), size=len(y))
            X, y = X[idx], y[idx]
        if fresh or not hasattr(self, "estimator_"):
            self.estimator_ = clone(self.estimator)
        start = perf_counter()
        if new is not None and hasattr(self.estimator_, "partial_fit"):
            self.estimator_.partial_fit(X, y, **kwargs)
        else:
            self.estimator_.fit(X, y, **kwargs)
        fit_time = perf_counter() - start
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        self._record(fit_time)
        return self

    def _record(self, fit_time):
        y = _labels(self.y_training_)
        labels, counts = np.unique(y, return_counts=True)
        class_counts = {c: 0 for c in getattr(self, "classes_", labels).tolist()}
        class_counts.update(zip(labels.tolist(), counts.tolist()))
        indices, query_time = getattr(self, "_pending", None) or (None, None)
        self._pending = None
        self.history_.append(
            {
                "round": len(self.history_),
                "n_labeled": len(y),
                "class_counts": class_counts,
                "fit_time": fit_time,
                "query_time": query_time,
                "query_indices": indices,
            }
        )

    def _check_fitted(self):
        check_params(self)
        if not hasattr(self, "estimator_"):
            if self.X_training is None:
                raise NotFittedError(
                    "This ActiveLearner has no labeled data yet: pass X_training and "
                    "y_training, or call fit or teach first."
                )
            self.X_training_, self.y_training_ = self.X_training, _labels(self.y_training)
            self.history_ = []
            self._pending = None
            self._fit_labeled(bootstrap=self.bootstrap_init, fresh=True)

    # -- querying and prediction -------------------------------------------
    def query(self, X_pool, n_instances=1, *, return_metrics=False, **query_kwargs):
        """Ask the query strategy which pool images to label next.

        Fits first if the learner has labeled data but no model yet. Without
        labeled data, a label-free strategy (``random``, ``typicality``,
        ``probcover``, or a schedule starting with one, see
        :func:`~skal_cxr.strategies.is_label_free`) picks the first images
        from the unfitted estimator; any other strategy raises
        ``NotFittedError``. The
        learner's ``random_state`` reaches the strategy as a per-round
        ``random_state`` unless one is given. The strategy is called once.

        Parameters
        ----------
        X_pool : array-like of shape (n_pool, ...) or Dataset
            The unlabeled images to choose from. A Dataset may yield images
            or ``(image, label)`` pairs (labels are not read).
        n_instances : int, default=1
            How many images to query.
        return_metrics : bool, default=False
            Also return the strategy's score of each queried image, like
            ``modAL.models.ActiveLearner.query``.
        **query_kwargs : dict
            Passed to the strategy (for example ``pool_size``, ``n_mc_samples``).

        Returns
        -------
        indices : ndarray of shape (n_instances,)
            Positions in ``X_pool``.
        X_query : array-like or Dataset
            ``X_pool[indices]``, a :class:`torch.utils.data.Subset` for a
            Dataset pool.
        scores : ndarray of shape (n_instances,)
            Only with ``return_metrics=True``: the strategy's score of each
            queried image (``None`` for a strategy that returns bare indices).
        """
        if (
            self.X_training is None
            and not hasattr(self, "estimator_")
            and is_label_free(self.query_strategy, 0)
        ):
            check_params(self)  # a label-free strategy picks the first labels unfitted
        else:
            self._check_fitted()
        if (
            query_kwargs.get("random_state") is None
            and self.random_state is not None
            and accepts_keyword(self.query_strategy, "random_state")
        ):
            query_kwargs["random_state"] = self._round_rng(1)
        start = perf_counter()
        result = self.query_strategy(self, X_pool, n_instances=n_instances, **query_kwargs)
        query_time = perf_counter() - start
        if isinstance(result, tuple) and len(result) == 2:
            indices, scores = result
        else:
            indices, scores = result, None
        indices = np.asarray(indices)
        self._pending = (indices, query_time)
        if return_metrics:
            return indices, _rows(X_pool, indices), scores
        return indices, _rows(X_pool, indices)

    def transform_without_estimating(self, X):
        """``X`` through every pipeline step but the last (``X`` itself otherwise).

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or Dataset
            Images.

        Returns
        -------
        Xt : array-like or Dataset
            ``X`` transformed by the pipeline's steps before the estimator.
        """
        return transform_before_final(getattr(self, "estimator_", self.estimator), X)

    def predict(self, X):
        """Labels predicted by the fitted estimator.

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or Dataset
            Images.

        Returns
        -------
        y_pred : ndarray of shape (n_images,)
            Labels from ``classes_``.
        """
        self._check_fitted()
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities of the fitted estimator.

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or Dataset
            Images.

        Returns
        -------
        probas : ndarray of shape (n_images, n_classes)
            In the order of ``classes_``.
        """
        self._check_fitted()
        return self.estimator_.predict_proba(X)

    def score(self, X, y, **score_kwargs):
        """The fitted estimator's ``score`` (accuracy for classifiers).

        Parameters
        ----------
        X : array-like of shape (n_images, ...) or Dataset
            Images.
        y : array-like of shape (n_images,)
            Their true labels.
        **score_kwargs : dict
            Passed to the estimator's ``score`` (for example ``sample_weight``).

        Returns
        -------
        score : float
            The estimator's score of ``(X, y)``.
        """
        self._check_fitted()
        return self.estimator_.score(X, y, **score_kwargs)

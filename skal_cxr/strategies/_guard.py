"""A guard: stay label-free until every class has ``k`` labels, then switch.

With a handful of labels a classifier's uncertainty says little, and an
uncertainty strategy that starts before each class is represented can keep
asking about one side of a boundary it has not seen. The guard queries
typical images (TypiClust, in the learner's view of the pool) until each
class has at least ``k`` labels in the learner's training set, then hands
over to an uncertainty strategy. It is a :func:`schedule` whose switch is
the labels per class instead of the number of labels.
"""

import numpy as np

from .._pipeline import final_estimator
from ..embeddings import MemoizedView, is_fitted
from ._base import fitted_estimator, strategy_doc
from ._schedule import call_stage, is_label_free
from ._typicality import typicality

__all__ = ["typicality_until_k_then", "classes_have_k", "labeled_labels", "view_of"]


def labeled_labels(learner, y_labeled=None):
    """The labels of the labeled set: ``y_labeled``, else the learner's, or ``None``.

    Parameters
    ----------
    learner : object
        Its ``y_training_`` (skal_cxr's fitted learner), else ``y_training``
        (modAL) is read.
    y_labeled : array-like or None, default=None
        Overrides the learner's labels.

    Returns
    -------
    y : ndarray of shape (n_labeled,) or None
        ``None`` when nothing is labeled.
    """
    for y in (
        y_labeled,
        getattr(learner, "y_training_", None),
        getattr(learner, "y_training", None),
    ):
        if y is not None and len(y) > 0:
            return np.ravel(np.asarray(y))
    return None


def classes_have_k(y, k, classes=None):
    """Whether every class has at least ``k`` labels in ``y``.

    Parameters
    ----------
    y : array-like of shape (n_labeled,) or None
        The labels so far (``None``: none).
    k : int
        Labels needed per class.
    classes : array-like or None, default=None
        The classes that must each reach ``k``; ``None``: those seen in
        ``y``, and at least two of them (a task has two classes or more).

    Returns
    -------
    done : bool
        ``True`` once each class has ``k`` labels.
    """
    if k <= 0:
        return True
    if y is None:
        return False
    values, counts = np.unique(np.asarray(y), return_counts=True)
    count = dict(zip(values.tolist(), counts.tolist()))
    if classes is None:
        return len(values) >= 2 and min(counts) >= k
    return all(count.get(c, 0) >= k for c in np.asarray(classes).tolist())


def view_of(learner):
    """The fitted encoder of the learner's estimator, remembered per image, or ``None``.

    Parameters
    ----------
    learner : object
        A learner whose (fitted or not) estimator may be a
        :class:`~skal_cxr.FrozenViewClassifier` (it has an ``encoder``).

    Returns
    -------
    view : MemoizedView or None
        The estimator's fitted ``encoder_`` (else its ``encoder`` parameter
        when fitted), computing features once per image; ``None`` when it
        has no fitted encoder.
    """
    final = final_estimator(fitted_estimator(learner))
    for encoder in (getattr(final, "encoder_", None), getattr(final, "encoder", None)):
        if encoder is not None and hasattr(encoder, "transform") and is_fitted(encoder):
            return MemoizedView(encoder).fit(None)
    return None


def _resolve_classes(learner, classes):
    if classes is not None:
        return classes
    return getattr(final_estimator(fitted_estimator(learner)), "classes", None)


def typicality_until_k_then(strategy, k=5, *, classes=None, first=typicality):
    """A strategy that is label-free until every class has ``k`` labels.

    Parameters
    ----------
    strategy : callable
        The strategy used once every class has ``k`` labels (for example
        :func:`max_entropy`).
    k : int, default=5
        Labels per class before the switch.
    classes : array-like or None, default=None
        The classes that must each have ``k`` labels; ``None`` takes the
        estimator's ``classes`` parameter when set, else the labels seen so
        far (at least two classes).
    first : callable, default=typicality
        The label-free strategy used before the switch.

    Returns
    -------
    guarded : callable
        A modAL-protocol strategy ``guarded(learner, X_pool, n_instances=1,
        *, pool_size=None, n_mc_samples=None, random_state=None,
        X_labeled=None, y_labeled=None, embedding="view", **kwargs) ->
        (indices, scores)``. The labels are ``y_labeled``, else the
        learner's ``y_training_``, else ``y_training``. ``embedding="view"``
        gives the first strategy the estimator's fitted encoder (a
        :class:`~skal_cxr.FrozenViewClassifier`'s), remembered per image,
        and ``"pca"`` when it has none; other values are passed as they
        are. Its ``stage(y)`` returns the strategy used with labels ``y``;
        its ``label_free(n_labeled)`` is true below ``k`` labels.

    See Also
    --------
    schedule : Switch strategies by the number of labels.

    Examples
    --------
    >>> from skal_cxr.strategies import max_entropy, typicality_until_k_then
    >>> guarded = typicality_until_k_then(max_entropy, k=2)
    >>> guarded.__name__
    'typicality_until_2_then_max_entropy'
    >>> guarded.stage([0, 0, 0, 1]).__name__, guarded.stage([0, 1, 1, 0]).__name__
    ('typicality', 'max_entropy')
    """
    if not callable(strategy) or not callable(first):
        raise TypeError("typicality_until_k_then needs callable strategies.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative int; got {k!r}.")

    def stage(y, learner=None):
        done = classes_have_k(
            None if y is None or len(y) == 0 else y, k, _resolve_classes(learner, classes)
        )
        return strategy if done else first

    def guarded(
        learner,
        X_pool,
        n_instances=1,
        *,
        pool_size=None,
        n_mc_samples=None,
        random_state=None,
        X_labeled=None,
        y_labeled=None,
        embedding="view",
        **kwargs,
    ):
        chosen = stage(labeled_labels(learner, y_labeled), learner)
        kwargs.update(pool_size=pool_size, n_mc_samples=n_mc_samples, random_state=random_state)
        if chosen is first:
            view = view_of(learner) if isinstance(embedding, str) and embedding == "view" else None
            if isinstance(embedding, str) and embedding == "view":
                embedding = "pca" if view is None else view
            kwargs["embedding"] = embedding
        return call_stage(chosen, learner, X_pool, n_instances, X_labeled, kwargs)

    name = f"{getattr(first, '__name__', 'strategy')}_until_{k}_then_"
    name += getattr(strategy, "__name__", "strategy")
    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = strategy_doc(
        f"Guarded query strategy {name} (see "
        ":func:`skal_cxr.strategies.typicality_until_k_then`).\n",
        """    X_labeled : array-like of shape (n_labeled, ...) or None, default=None
        The images labeled so far; ``None`` takes the learner's.
    y_labeled : array-like of shape (n_labeled,) or None, default=None
        Their labels; ``None`` takes the learner's ``y_training_``, else
        ``y_training``. They choose the stage.
    embedding : "view", "pca", "network", "precomputed" or transformer, default="view"
        The label-free stage's view; ``"view"``: the estimator's fitted
        encoder, else ``"pca"``.
    **kwargs : dict
        Passed to the stage's strategy when it accepts them.
""",
        scores="The stage strategy's score of each queried image.",
    )
    guarded.stage = stage
    guarded.k = k
    guarded.label_free = lambda n_labeled=0: 0 <= n_labeled < k and is_label_free(first)
    return guarded

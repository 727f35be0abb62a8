"""Class-balanced batches: spread a batch across the predicted classes.

On an imbalanced pool most of the top-scored images can come from one class.
:func:`class_balanced` wraps any strategy so that each batch takes about the
same number of images from every predicted class (rarest classes first when
the batch does not divide evenly), running the wrapped strategy inside each
class. Predictions are the arg-max of the Monte Carlo mean (else of
``predict_proba``), computed once and shared with the wrapped strategy.
"""

import numpy as np

from ._base import run_strategy, strategy_doc

__all__ = ["class_quotas", "class_balanced"]


def class_quotas(predicted, n_instances, n_classes=None):
    """Split ``n_instances`` as evenly as possible over the predicted classes.

    Slots are dealt one at a time, round-robin, to the classes that still have
    unpicked images, rarest predicted class first.

    Parameters
    ----------
    predicted : array-like of shape (n_images,)
        Predicted class codes ``0 .. n_classes - 1``.
    n_instances : int
        At most ``n_images``.
    n_classes : int or None, default=None
        ``None`` uses ``max(predicted) + 1``.

    Returns
    -------
    quotas : ndarray of shape (n_classes,)
        Images to take from each class; sums to ``n_instances``.
    """
    counts = np.bincount(np.asarray(predicted, dtype=np.intp), minlength=n_classes or 0)
    if n_instances > counts.sum():
        raise ValueError(f"n_instances={n_instances} exceeds the {counts.sum()} images.")
    order = np.argsort(counts, kind="stable")
    quotas = np.zeros_like(counts)
    remaining = n_instances
    while remaining:
        for c in order:
            if remaining and quotas[c] < counts[c]:
                quotas[c] += 1
                remaining -= 1
    return quotas


def _indices_and_scores(result):
    """``(indices, scores)`` from a strategy; NaN scores for one returning bare indices."""
    if isinstance(result, tuple) and len(result) == 2:
        return result
    indices = np.asarray(result)
    return indices, np.full(len(indices), np.nan)


def class_balanced(strategy):
    """Wrap ``strategy`` so that its batches spread across predicted classes.

    Parameters
    ----------
    strategy : callable
        A skal_cxr strategy, or one made with
        :func:`~skal_cxr.strategies.make_strategy` (it then reuses this
        query's Monte Carlo samples through its ``select`` attribute), or
        any modAL-protocol strategy (called on each class's sub-pool).

    Returns
    -------
    balanced : callable
        A modAL-protocol strategy ``balanced(learner, X_pool, n_instances=1,
        *, pool_size=None, n_mc_samples=None, random_state=None, **kwargs)
        -> (indices, scores)``; ``kwargs`` go to ``strategy``. Indices
        interleave the classes: the best image of each class, then the
        second best, and so on; scores are the wrapped strategy's (NaN if
        it returns bare indices).
    """
    inner = getattr(strategy, "select", None)
    name = f"class_balanced({getattr(strategy, '__name__', 'strategy')})"

    def select(ctx, n_instances, **kwargs):
        probas = ctx.mean_probas()
        predicted = probas.argmax(axis=1)
        quotas = class_quotas(predicted, n_instances, probas.shape[1])
        picks, scores, ranks = [], [], []
        for c in np.argsort(quotas == 0, kind="stable"):
            if quotas[c] == 0:
                break
            positions = np.flatnonzero(predicted == c)
            sub = ctx.subset(positions)
            if inner is not None:
                local, local_scores = inner(sub, int(quotas[c]), **kwargs)
            else:
                local, local_scores = _indices_and_scores(
                    strategy(ctx.learner, sub.X, int(quotas[c]), **kwargs)
                )
            local = np.asarray(local, dtype=np.intp)
            picks.append(positions[local])
            scores.append(np.broadcast_to(np.asarray(local_scores, dtype=np.float64), local.shape))
            ranks.append(np.arange(len(local)))
        order = np.argsort(np.concatenate(ranks), kind="stable")
        return np.concatenate(picks)[order], np.concatenate(scores)[order]

    def balanced(
        learner,
        X_pool,
        n_instances=1,
        *,
        pool_size=None,
        n_mc_samples=None,
        random_state=None,
        **kwargs,
    ):
        return run_strategy(
            select,
            learner,
            X_pool,
            n_instances,
            pool_size=pool_size,
            n_mc_samples=n_mc_samples,
            random_state=random_state,
            name=name,
            **kwargs,
        )

    balanced.__name__ = balanced.__qualname__ = name
    balanced.__doc__ = strategy_doc(
        f"{name}: the batch spread across predicted classes (see class_balanced).\n",
        "    **kwargs : dict\n        Passed to the wrapped strategy.\n",
        scores="The wrapped strategy's score of each queried image.",
    )
    balanced.select = select
    balanced.strategy = strategy
    return balanced

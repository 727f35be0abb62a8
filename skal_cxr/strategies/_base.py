"""What every query strategy shares: the query context and the selection rules.

A strategy follows modAL's protocol ``strategy(learner, X_pool, n_instances=1,
**kwargs) -> (indices, scores)``. Internally each one is a *selector*
``select(ctx, n_instances, **params) -> (positions, scores)`` working on a
:class:`QueryContext`, which holds the (optionally subsampled) pool, the fitted
estimator, the random generator and the Monte Carlo samples, computed at most
once per query and shared by every score that needs them. :func:`run_strategy`
builds the context (defined in ``_context``), runs the selector and maps
positions back to ``X_pool``; :func:`make_strategy` builds a strategy from a
per-image scoring function.

Monte Carlo samples always have shape ``(n_mc_samples, n_images, n_classes)``.
"""

import numpy as np

from .._random import resolve_rng
from .._validation import accepts_keyword
from ._context import QueryContext, _take, fitted_estimator  # noqa: F401 (importable here)

__all__ = [
    "QueryContext",
    "run_strategy",
    "make_strategy",
    "select_top",
    "fitted_estimator",
    "check_samples",
    "mean_probas",
    "strategy_doc",
]


def select_top(scores, n_instances, random_state=None):
    """Positions of the ``n_instances`` highest scores, highest first.

    Ties are broken by a random permutation drawn from ``random_state`` (then
    a stable sort), so equal scores never favour low indices. NaN scores come
    last.

    Parameters
    ----------
    scores : array-like of shape (n_images,)
        One score per image, higher meaning more informative.
    n_instances : int
        How many positions to return, at most ``n_images``.
    random_state : int, RandomState, Generator or None, default=None
        Breaks ties; a ``Generator`` is used (and advanced) as it is.

    Returns
    -------
    positions : ndarray of shape (n_instances,)
        Positions in ``scores``, highest score first.

    See Also
    --------
    make_strategy : Build a query strategy that uses this rule.

    Examples
    --------
    >>> from skal_cxr.strategies import select_top
    >>> select_top([0.1, 0.9, 0.5], 2, random_state=0)
    array([1, 2])
    """
    scores = np.asarray(scores, dtype=np.float64)
    perm = resolve_rng(random_state).permutation(len(scores))
    keys = np.where(np.isnan(scores[perm]), np.inf, -scores[perm])
    return perm[np.argsort(keys, kind="stable")[:n_instances]]


def run_strategy(
    select, learner, X_pool, n_instances, *, pool_size, n_mc_samples, random_state, name, **params
):
    """Build a :class:`QueryContext`, run ``select`` and map back to ``X_pool``.

    ``select(ctx, n_instances, **params)`` returns ``(positions, scores)``:
    positions in the context's candidates and the score of each pick.

    Returns
    -------
    indices : ndarray of shape (n_instances,), dtype intp
        Unique positions in ``X_pool``, most informative first.
    scores : ndarray of shape (n_instances,)
        The score of each queried image (see each strategy).
    """
    ctx = QueryContext(
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name=name,
    )
    positions, scores = select(ctx, int(n_instances), **params)
    positions = np.asarray(positions, dtype=np.intp)
    return ctx.pool_index[positions], np.asarray(scores, dtype=np.float64)


def check_samples(samples, name="samples"):
    """Validate MC probabilities of shape (n_mc_samples, n_images, n_classes) as float64."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_mc_samples, n_images, n_classes); got {samples.shape}."
        )
    return samples


def mean_probas(probas):
    """Mean class probabilities from (n_images, n_classes) or MC samples (3-D)."""
    probas = np.asarray(probas, dtype=np.float64)
    if probas.ndim == 3:
        return probas.mean(axis=0)
    if probas.ndim != 2:
        raise ValueError(
            "probas must have shape (n_images, n_classes) or (n_mc_samples, n_images, "
            f"n_classes); got {probas.shape}."
        )
    return probas


STRATEGY_PARAMS_DOC = """
    Parameters
    ----------
    learner : ActiveLearner or modAL learner
        Its fitted estimator (``estimator_``, else ``estimator``) may be a
        :class:`~sklearn.pipeline.Pipeline`; the pool then goes through the
        steps before the last one.
    X_pool : array-like of shape (n_images, ...)
        The unlabeled images to choose from.
    n_instances : int, default=1
        How many images to query.
{extra}    pool_size : int or None, default=None
        Score only a random subset of this many pool images (drawn from
        ``random_state``); the indices still point into ``X_pool``.
    n_mc_samples : int or None, default=None
        Monte Carlo samples; ``None`` uses the estimator's ``n_mc_samples``.
    random_state : int, RandomState, Generator or None, default=None
        Breaks ties and draws the subset; ``None`` takes the learner's, else
        the estimator's ``random_state``.

    Returns
    -------
    indices : ndarray of shape (n_instances,)
        Unique positions in ``X_pool``: highest score first, or in picking
        order for the greedy and sampling strategies.
    scores : ndarray of shape (n_instances,)
        {scores}
"""

_TOP_SCORES = "The score of each queried image."


def strategy_doc(summary, extra="", scores=_TOP_SCORES):
    """``summary`` followed by the shared Parameters and Returns sections."""
    return summary + STRATEGY_PARAMS_DOC.format(extra=extra, scores=scores)


_NEEDS = ("probas", "samples", "pool")


def _score_input(ctx, needs):
    """The input of a scoring function, as ``needs`` asks (see make_strategy)."""
    if needs == "probas":
        return ctx.mean_probas()
    if needs == "pool":
        return ctx.X
    return None  # "samples": computed by ctx.sample_statistic


def make_strategy(score_fn, *, needs="probas", name=None, doc=None):
    """Turn a per-image scoring function into a modAL-protocol query strategy.

    The strategy queries the ``n_instances`` images of highest score. It
    draws the pool subset (``pool_size``), evaluates the model once per
    query, scores large pools chunk by chunk (``needs="samples"``), breaks
    ties at random and maps positions back to ``X_pool``, like the built-in
    strategies, which are made with it.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(values) -> scores`` of shape ``(n_images,)``, higher
        meaning more worth labeling. If it takes a ``random_state``
        argument, it receives the query's random generator.
    needs : {"probas", "samples", "pool"}, default="probas"
        What ``values`` is. ``"probas"``: class probabilities of shape
        ``(n_images, n_classes)``, the Monte Carlo mean when the estimator
        has ``predict_proba_samples``, else ``predict_proba``.
        ``"samples"``: Monte Carlo probabilities of shape ``(n_mc_samples,
        n_images, n_classes)``, given in chunks of images for large pools
        (so ``score_fn`` must score each image on its own).
        ``"pool"``: the candidate images themselves; the model is not
        evaluated.
    name : str or None, default=None
        Name of the strategy (``__name__``, error messages); ``None`` uses
        ``score_fn.__name__``.
    doc : str or None, default=None
        Summary of the strategy's docstring, followed by the shared
        Parameters and Returns sections; ``None`` uses a generic summary.

    Returns
    -------
    strategy : callable
        ``strategy(learner, X_pool, n_instances=1, *, pool_size=None,
        n_mc_samples=None, random_state=None) -> (indices, scores)``.
        Its ``select(ctx, n_instances) -> (positions, scores)`` attribute
        applies the rule to a :class:`QueryContext`;
        :func:`class_balanced` uses it to share the query's model outputs.
        Its ``label_free`` attribute is true for ``needs="pool"`` (no model
        is evaluated, so an unfitted estimator will do).

    See Also
    --------
    select_top : The selection rule, with random tie-breaking.
    class_balanced : Spread a strategy's batches across predicted classes.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.strategies import make_strategy
    >>> def second_class(probas):
    ...     return probas[:, 1]
    >>> strategy = make_strategy(second_class)
    >>> class Fixed:  # a stand-in for a fitted classifier
    ...     def predict_proba(self, X):
    ...         return np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> indices, scores = strategy(Fixed(), np.zeros((3, 8, 8)), n_instances=2)
    >>> indices, scores
    (array([1, 2]), array([0.8, 0.4]))
    """
    if needs not in _NEEDS:
        raise ValueError(f"needs must be one of {_NEEDS}; got {needs!r}.")
    name = name or getattr(score_fn, "__name__", "strategy")
    takes_rng = accepts_keyword(score_fn, "random_state")

    def scores_of(ctx):
        kwargs = {"random_state": ctx.rng} if takes_rng else {}
        if needs == "samples":
            return ctx.sample_statistic(lambda samples: score_fn(samples, **kwargs))
        return score_fn(_score_input(ctx, needs), **kwargs)

    def select(ctx, n_instances):
        scores = np.asarray(scores_of(ctx), dtype=np.float64)
        if scores.shape != (len(ctx),):
            raise ValueError(
                f"{name}: the scoring function returned shape {scores.shape}; expected "
                f"({len(ctx)},), one score per image."
            )
        positions = select_top(scores, n_instances, ctx.rng)
        return positions, scores[positions]

    def strategy(
        learner, X_pool, n_instances=1, *, pool_size=None, n_mc_samples=None, random_state=None
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
        )

    strategy.__name__ = strategy.__qualname__ = name
    # pickled by reference: the module that defines the scoring function
    # (where the built-in strategies are bound to ``name``)
    strategy.__module__ = getattr(score_fn, "__module__", strategy.__module__)
    strategy.__doc__ = strategy_doc(doc or f"Query the images of highest ``{name}`` score.\n")
    strategy.select = select
    strategy.label_free = needs == "pool"
    return strategy

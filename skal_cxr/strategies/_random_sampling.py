"""Random sampling: the baseline every acquisition function must beat."""

import numbers

from .._random import resolve_rng
from ._base import make_strategy

__all__ = ["random_scores", "random_sampling"]


def random_scores(X, random_state=None):
    """Independent uniform scores in [0, 1), one per image.

    Unlike the other ``*_scores`` functions this one takes the images, not
    class probabilities: random sampling evaluates no model.

    Parameters
    ----------
    X : int or array-like of shape (n_images, ...)
        The candidate images (only their number is used), or that number.
    random_state : int, RandomState, Generator or None, default=None
        Draws the scores; a ``Generator`` is used (and advanced) as it is.

    Returns
    -------
    scores : ndarray of shape (n_images,)
        Uniform in [0, 1).

    See Also
    --------
    random_sampling : The strategy that queries the top random scores.
    """
    n_images = X if isinstance(X, numbers.Integral) else len(X)
    return resolve_rng(random_state).random(n_images)


random_sampling = make_strategy(
    random_scores,
    needs="pool",
    name="random_sampling",
    doc="""Query images uniformly at random, without replacement.

    The score is :func:`random_scores`; the model is not evaluated.
""",
)

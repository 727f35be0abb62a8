"""Random sampling: the baseline every acquisition function must beat."""

from ._base import resolve_rng, score_strategy

__all__ = ["random_scores", "random_sampling"]


def random_scores(n_images, random_state=None):
    """Independent uniform scores in [0, 1), one per image.

    Parameters
    ----------
    n_images : int
    random_state : int, RandomState, Generator or None, default=None

    Returns
    -------
    scores : ndarray of shape (n_images,)
    """
    return resolve_rng(random_state).random(n_images)


random_sampling = score_strategy(
    lambda ctx: ctx.rng.random(len(ctx)),
    "random_sampling",
    """Query images uniformly at random, without replacement.

    The score is :func:`random_scores`; the model is not evaluated.
""",
)

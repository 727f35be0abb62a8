"""ProbCover: greedy maximum coverage of the pool by balls of radius delta.

Yehuda, Dekel, Hacohen & Weinshall (2022), "Active Learning Through a
Covering Lens" (NeurIPS, arXiv 2205.11320). Every image covers the images
within distance ``delta`` of it; the picks greedily maximise the number of
images covered by the labeled set and the picks. ``delta`` is the largest
radius whose balls stay *pure*: with k-means pseudo-labels (one cluster per
class), at least ``alpha`` of the images have no image of another cluster
within ``delta``. No model and no label is needed.
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.neighbors import radius_neighbors_graph

from .._random import resolve_rng
from .._validation import check_int
from ._base import run_strategy, select_top, strategy_doc
from ._embedding import EMBEDDING_DOC, embed_candidates

__all__ = ["purity_radius", "max_coverage", "probcover"]


def _impure_distance(X, pseudo_labels):
    """Distance of each row to its nearest row of another pseudo-label (inf if none)."""
    distance = np.full(len(X), np.inf)
    for c in np.unique(pseudo_labels):
        inside = pseudo_labels == c
        if inside.all():
            continue
        distance[inside] = pairwise_distances_argmin_min(X[inside], X[~inside])[1]
    return distance


def purity_radius(features, n_clusters=2, alpha=0.95, deltas=None, random_state=None):
    """ProbCover's ball radius: the largest delta whose balls are ``alpha``-pure.

    The rows are clustered by k-means into ``n_clusters`` pseudo-classes. A
    row is pure at ``delta`` when no row of another cluster lies within
    ``delta`` (Euclidean, inclusive); the purity is the fraction of pure rows.

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        All images (labeled and candidates).
    n_clusters : int, default=2
        k-means clusters, one per class in the paper.
    alpha : float, default=0.95
        Purity required, in (0, 1).
    deltas : array-like of float or None, default=None
        Radii to try (scikit-activeml's ``deltas``): the largest one with
        purity at least ``alpha`` is returned, or the smallest one, with a
        warning, when none is pure enough. ``None`` returns the exact
        largest such radius among the rows' distances to their nearest
        other-cluster row (half the smallest one if even that is too large).
    random_state : int, RandomState, Generator or None, default=None
        Seeds k-means.

    Returns
    -------
    delta : float
        The radius.
    """
    X = np.asarray(features, dtype=np.float64)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
    rng = resolve_rng(random_state)
    n_clusters = min(check_int(n_clusters, "n_clusters", min_val=2), len(X))
    pseudo = KMeans(
        n_clusters=n_clusters, n_init=1, random_state=int(rng.integers(np.iinfo(np.int32).max))
    ).fit_predict(X)
    impure_at = np.sort(_impure_distance(X, pseudo))  # row impure iff delta >= this
    if deltas is not None:
        deltas = np.sort(np.asarray(deltas, dtype=np.float64).ravel())
        if len(deltas) == 0 or (deltas < 0).any():
            raise ValueError("deltas must hold non-negative floats.")
        purity = 1.0 - np.searchsorted(impure_at, deltas, side="right") / len(X)
        ok = np.flatnonzero(purity >= alpha)
        if len(ok) == 0:
            warnings.warn(
                f"No delta reaches purity alpha={alpha} (best {purity.max():.3f}); "
                f"using the smallest, {deltas[0]}.",
                stacklevel=2,
            )
            return float(deltas[0])
        return float(deltas[ok[-1]])
    n_impure = int(np.floor((1.0 - alpha) * len(X) + 1e-9))  # allowed impure rows
    if n_impure >= len(X) or not np.isfinite(impure_at[n_impure]):
        finite = impure_at[np.isfinite(impure_at)]
        return float(finite.max()) if len(finite) else float("inf")
    # any delta below impure_at[n_impure] leaves at most n_impure rows impure
    below = impure_at[:n_impure][impure_at[:n_impure] < impure_at[n_impure]]
    return float(below[-1]) if len(below) else float(impure_at[0] / 2)


def max_coverage(features, labeled, n_instances, delta, *, random_state=None):
    """Greedy picks maximising the rows within ``delta`` of a labeled row or pick.

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        All images.
    labeled : array-like of bool, shape (n_images,)
        Labeled rows (they cover their balls from the start).
    n_instances : int
        Picks among the unlabeled rows.
    delta : float
        Ball radius (Euclidean, inclusive).
    random_state : int, RandomState, Generator or None, default=None
        Breaks ties (once everything is covered, picks are uniformly random).

    Returns
    -------
    positions : ndarray of shape (n_instances,)
        Rows of ``features``, in picking order.
    scores : ndarray of shape (n_instances,)
        Rows newly covered by each pick.
    """
    X = np.asarray(features, dtype=np.float64)
    labeled = np.asarray(labeled, dtype=bool)
    rng = resolve_rng(random_state)
    graph = radius_neighbors_graph(X, delta, mode="connectivity", include_self=True).tocsr()
    covered = np.zeros(len(X), dtype=bool)
    if labeled.any():
        covered[graph[np.flatnonzero(labeled)].indices] = True
    candidate = ~labeled
    picked, gains = [], []
    for _ in range(check_int(n_instances, "n_instances")):
        gain = graph @ (~covered).astype(np.float64)
        scores = np.where(candidate, gain, np.nan)
        i = int(select_top(scores, 1, rng)[0])
        picked.append(i)
        gains.append(gain[i])
        candidate[i] = False
        covered[graph[i].indices] = True
    return np.array(picked, dtype=np.intp), np.array(gains, dtype=np.float64)


def _select(
    ctx, n_instances, embedding="pca", X_labeled=None, n_clusters=2, alpha=0.95, deltas=None
):
    pool, lab = embed_candidates(ctx, embedding, X_labeled)
    X = np.concatenate([pool, lab])
    labeled = np.r_[np.zeros(len(pool), dtype=bool), np.ones(len(lab), dtype=bool)]
    delta = purity_radius(X, n_clusters, alpha, deltas, random_state=ctx.rng)
    return max_coverage(X, labeled, n_instances, delta, random_state=ctx.rng)


def probcover(
    learner,
    X_pool,
    n_instances=1,
    *,
    embedding="pca",
    X_labeled=None,
    n_clusters=2,
    alpha=0.95,
    deltas=None,
    pool_size=None,
    n_mc_samples=None,
    random_state=None,
):
    return run_strategy(
        _select,
        learner,
        X_pool,
        n_instances,
        pool_size=pool_size,
        n_mc_samples=n_mc_samples,
        random_state=random_state,
        name="probcover",
        embedding=embedding,
        X_labeled=X_labeled,
        n_clusters=n_clusters,
        alpha=alpha,
        deltas=deltas,
    )


probcover.__doc__ = strategy_doc(
    """Query the images whose delta-balls cover most of the uncovered pool (ProbCover).

    Label-free (unless ``embedding="network"``). ``delta`` comes from
    :func:`purity_radius` on the candidates and labeled images; picks follow
    :func:`max_coverage` (Yehuda et al., 2022). ``n_mc_samples`` is accepted
    for a uniform interface and unused.

    The view matters: its authors use self-supervised features. On 50
    principal components of PneumoniaMNIST's pixels its first 20 picks held
    no normal film in any of 10 seeds (docs/benchmarks.rst, "Labeling cold
    start"); prefer :func:`typicality` there, or try a
    :class:`~skal_cxr.embeddings.ContrastiveEncoder` view (not measured).
""",
    EMBEDDING_DOC
    + """    n_clusters : int, default=2
        k-means pseudo-classes of the purity (the number of classes).
    alpha : float, default=0.95
        Purity required of the balls.
    deltas : array-like of float or None, default=None
        Radii to choose from; ``None`` finds the exact radius.
""",
    scores="The number of images newly covered by each queried image.",
)
probcover.select = _select
probcover.label_free = True

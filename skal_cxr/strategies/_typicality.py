"""Typicality (TypiClust): the most typical image of each large uncovered cluster.

Hacohen, Dekel & Weinshall (2022), "Active Learning on a Budget: Opposite
Strategies Suit High and Low Budgets" (ICML, arXiv 2202.02794). With few
labels, the images worth labeling are *typical* ones (dense regions of a
good view of the pool) from *different* regions. The pool and the labeled
images are clustered by k-means into ``n_labeled + n_instances`` clusters;
clusters holding no labeled image are taken largest first, and from each the
image of highest typicality, the inverse mean distance to its ``k`` nearest
neighbours within the cluster, is picked. No model and no label is needed,
so it can choose the very first labels.
"""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from .._random import resolve_rng
from .._validation import check_int
from ._base import run_strategy, select_top, strategy_doc
from ._embedding import EMBEDDING_DOC, embed_candidates

__all__ = ["typicality_scores", "typiclust", "typicality"]


def typicality_scores(features, n_neighbors=20):
    """Inverse mean Euclidean distance of each row to its nearest other rows.

    ``1 / mean_{j in kNN(i)} ||x_i - x_j||`` with ``k = min(n_neighbors,
    n_images - 1)``; a single row has typicality 0, a row with ``k``
    duplicates infinite typicality.

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        Feature vectors (for TypiClust: the members of one cluster).
    n_neighbors : int, default=20
        ``k``, the neighbours averaged (the paper's 20).

    Returns
    -------
    scores : ndarray of shape (n_images,)
        Higher means more typical.
    """
    X = np.asarray(features, dtype=np.float64)
    n_neighbors = check_int(n_neighbors, "n_neighbors")
    k = min(n_neighbors, len(X) - 1)
    if k < 1:
        return np.zeros(len(X))
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    # column 0 is the row itself (distance 0) unless it has exact duplicates,
    # in which case the k smallest distances hold the same values anyway
    mean = distances[:, 1:].mean(axis=1)
    with np.errstate(divide="ignore"):
        return 1.0 / mean


def typiclust(
    features, labeled, n_instances, *, n_neighbors=20, max_clusters=500, random_state=None
):
    """TypiClust's picks among the unlabeled rows of ``features``.

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        Every image: labeled and candidates.
    labeled : array-like of bool, shape (n_images,)
        Which rows are labeled; the others are candidates.
    n_instances : int
        Picks, at most the number of candidates.
    n_neighbors : int, default=20
        Neighbours of the typicality (:func:`typicality_scores`).
    max_clusters : int, default=500
        Cap on the number of k-means clusters (the paper's cap).
    random_state : int, RandomState, Generator or None, default=None
        Seeds k-means and breaks ties.

    Returns
    -------
    positions : ndarray of shape (n_instances,)
        Rows of ``features``, in picking order.
    scores : ndarray of shape (n_instances,)
        The typicality of each pick within its cluster.

    Notes
    -----
    Clusters are visited in order of fewest labeled (or already picked)
    members, then largest; with ``n_labeled + n_instances`` clusters the
    first ``n_instances`` visited are uncovered ones, as in the paper. The
    most typical unlabeled member of the visited cluster is picked.
    """
    X = np.asarray(features, dtype=np.float64)
    labeled = np.asarray(labeled, dtype=bool)
    if labeled.shape != (len(X),):
        raise ValueError(f"labeled must have shape ({len(X)},); got {labeled.shape}.")
    n_candidates = int((~labeled).sum())
    n_instances = check_int(n_instances, "n_instances")
    if n_instances > n_candidates:
        raise ValueError(f"n_instances={n_instances} exceeds the {n_candidates} candidates.")
    rng = resolve_rng(random_state)
    n_clusters = min(
        int(labeled.sum()) + n_instances,
        check_int(max_clusters, "max_clusters"),
        len(np.unique(X, axis=0)),
    )
    clusters = KMeans(
        n_clusters=n_clusters, n_init=1, random_state=int(rng.integers(np.iinfo(np.int32).max))
    ).fit_predict(X)
    sizes = np.bincount(clusters, minlength=n_clusters)
    taken = np.bincount(clusters[labeled], minlength=n_clusters)
    available = np.bincount(clusters[~labeled], minlength=n_clusters)
    typicality = {}
    picked, scores = [], []
    free = ~labeled
    for _ in range(n_instances):
        # fewest labeled members first, then the largest; random among ties
        key = np.where(available > 0, taken * (len(X) + 1) - sizes, np.inf)
        cluster = int(select_top(-key, 1, rng)[0])
        members = np.flatnonzero(clusters == cluster)
        if cluster not in typicality:
            typicality[cluster] = typicality_scores(X[members], n_neighbors)
        values = np.where(free[members], typicality[cluster], np.nan)
        best = int(select_top(values, 1, rng)[0])
        picked.append(members[best])
        scores.append(typicality[cluster][best])
        free[members[best]] = False
        taken[cluster] += 1
        available[cluster] -= 1
    return np.array(picked, dtype=np.intp), np.array(scores, dtype=np.float64)


def _select(ctx, n_instances, embedding="pca", X_labeled=None, n_neighbors=20, max_clusters=500):
    pool, lab = embed_candidates(ctx, embedding, X_labeled)
    labeled = np.r_[np.zeros(len(pool), dtype=bool), np.ones(len(lab), dtype=bool)]
    return typiclust(
        np.concatenate([pool, lab]),
        labeled,
        n_instances,
        n_neighbors=n_neighbors,
        max_clusters=max_clusters,
        random_state=ctx.rng,
    )


def typicality(
    learner,
    X_pool,
    n_instances=1,
    *,
    embedding="pca",
    X_labeled=None,
    n_neighbors=20,
    max_clusters=500,
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
        name="typicality",
        embedding=embedding,
        X_labeled=X_labeled,
        n_neighbors=n_neighbors,
        max_clusters=max_clusters,
    )


typicality.__doc__ = strategy_doc(
    """Query the most typical image of each large uncovered cluster (TypiClust).

    Label-free: works with an unfitted estimator (unless
    ``embedding="network"``), so it can choose the first labels. The
    candidates and the labeled images are clustered by k-means into
    ``n_labeled + n_instances`` clusters in the ``embedding`` view; the
    largest clusters without a labeled image each give their most typical
    image (Hacohen et al., 2022); see :func:`typiclust`.
    ``n_mc_samples`` is accepted for a uniform interface and unused.
""",
    EMBEDDING_DOC
    + """    n_neighbors : int, default=20
        Neighbours of the typicality (:func:`typicality_scores`).
    max_clusters : int, default=500
        Cap on the number of clusters.
""",
    scores="The typicality of each queried image within its cluster.",
)
typicality.select = _select
typicality.label_free = True

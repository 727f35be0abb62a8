"""DropQuery: uncertain under dropout, then diverse by k-means.

Gupte, Wu, Yeung-Levy et al. (TMLR 2024), "Revisiting Active Learning in
the Era of Vision Foundation Models". On a strong frozen view, perturbing
the features with dropout and watching the prediction change finds the
images near the decision boundary; clustering those candidates and taking
the one nearest each cluster's centre spreads a batch over the pool. Here
the perturbed predictions are the estimator's MC Dropout samples (with a
:class:`~skal_cxr.FrozenViewClassifier` and ``input_dropout > 0`` they are
exactly dropout on the features), the reference prediction is its
``predict_proba`` (dropout off unless ``mc_predict=True``) and the features
are its ``embed``.
"""

import numpy as np
from sklearn.cluster import KMeans

from .._random import resolve_rng
from .._validation import check_int
from ._base import check_samples, mean_probas, run_strategy, select_top, strategy_doc

__all__ = ["inconsistency_scores", "dropquery_select", "dropquery"]


def inconsistency_scores(probas, samples):
    """Fraction of MC samples whose predicted class differs from the reference.

    Parameters
    ----------
    probas : array-like of shape (n_images, n_classes)
        The reference probabilities (dropout off).
    samples : array-like of shape (n_mc_samples, n_images, n_classes)
        Probabilities under dropout.

    Returns
    -------
    scores : ndarray of shape (n_images,)
        In ``[0, 1]``; higher means the prediction changes more often.
    """
    reference = mean_probas(probas).argmax(axis=1)
    samples = check_samples(samples)
    return (samples.argmax(axis=2) != reference[None, :]).mean(axis=0)


def dropquery_select(features, inconsistency, n_instances, *, threshold=0.5, random_state=None):
    """DropQuery's picks: the candidates nearest the centres of their k-means clusters.

    Candidates are the images whose ``inconsistency`` exceeds ``threshold``.
    With at least ``n_instances`` of them they are clustered by k-means into
    ``n_instances`` clusters (fewer when they have fewer distinct feature
    rows) and each cluster, largest first, gives its member nearest its
    centre. Missing picks are drawn at random from the other images (the
    paper's rule when candidates run short).

    Parameters
    ----------
    features : array-like of shape (n_images, n_features)
        The view the clusters are made in.
    inconsistency : array-like of shape (n_images,)
        :func:`inconsistency_scores`.
    n_instances : int
        Picks, at most ``n_images``.
    threshold : float, default=0.5
        Candidates have an inconsistency above it (more than half of the
        samples change the prediction, as in the paper).
    random_state : int, RandomState, Generator or None, default=None
        Seeds k-means, the random fill and ties.

    Returns
    -------
    positions : ndarray of shape (n_instances,)
        Rows of ``features``, in picking order.
    scores : ndarray of shape (n_instances,)
        The inconsistency of each pick.
    """
    X = np.asarray(features, dtype=np.float64)
    inconsistency = np.asarray(inconsistency, dtype=np.float64)
    n_instances = check_int(n_instances, "n_instances")
    if n_instances > len(X):
        raise ValueError(f"n_instances={n_instances} exceeds the {len(X)} images.")
    rng = resolve_rng(random_state)
    candidates = np.flatnonzero(inconsistency > threshold)
    picked = []
    if len(candidates):
        n_clusters = min(n_instances, len(candidates), len(np.unique(X[candidates], axis=0)))
        km = KMeans(
            n_clusters=n_clusters, n_init=10, random_state=int(rng.integers(np.iinfo(np.int32).max))
        ).fit(X[candidates])
        sizes = np.bincount(km.labels_, minlength=n_clusters)
        for cluster in select_top(sizes, n_clusters, rng):
            members = candidates[km.labels_ == cluster]
            distance = np.linalg.norm(X[members] - km.cluster_centers_[cluster], axis=1)
            picked.append(members[select_top(-distance, 1, rng)[0]])
    if len(picked) < n_instances:
        rest = np.setdiff1d(np.arange(len(X)), picked)
        picked.extend(rng.choice(rest, n_instances - len(picked), replace=False).tolist())
    positions = np.array(picked, dtype=np.intp)
    return positions, inconsistency[positions]


def _select(ctx, n_instances, threshold=0.5):
    samples = ctx.mc_samples()
    final = ctx.final
    if not hasattr(final, "predict_proba"):
        raise TypeError(f"dropquery needs predict_proba; {type(final).__name__} has none.")
    reference = np.asarray(final.predict_proba(ctx.transform(ctx.X)), dtype=np.float64)
    scores = inconsistency_scores(reference, samples)
    return dropquery_select(
        ctx.features(), scores, n_instances, threshold=threshold, random_state=ctx.rng
    )


def dropquery(
    learner,
    X_pool,
    n_instances=1,
    *,
    threshold=0.5,
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
        name="dropquery",
        threshold=threshold,
    )


dropquery.__doc__ = strategy_doc(
    """Query diverse images whose prediction changes under dropout (DropQuery).

    Candidates are the images for which more than ``threshold`` of the MC
    Dropout samples predict another class than ``predict_proba``; they are
    clustered by k-means in the estimator's ``embed`` view and the member
    nearest each centre is queried (Gupte et al., 2024); see
    :func:`dropquery_select`. Needs ``predict_proba_samples``,
    ``predict_proba`` and ``embed`` (:class:`~skal_cxr.FrozenViewClassifier`,
    :class:`~skal_cxr.MCDropoutCNN`).
""",
    """    threshold : float, default=0.5
        Fraction of changed predictions above which an image is a candidate.
""",
    scores="The inconsistency (fraction of changed predictions) of each queried image.",
)
dropquery.select = _select
dropquery.label_free = False

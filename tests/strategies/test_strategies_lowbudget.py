"""Known answers of the low-budget strategies: typicality, ProbCover, BADGE, schedules.

Picks are cross-checked against scikit-activeml 1.0 (TypiClust, ProbCover,
Badge) on the same features when it is installed (a test-only dependency).
"""

import functools
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from skal_cxr import ActiveLearner, MCDropoutCNN
from skal_cxr.strategies import (
    badge,
    gradient_embeddings,
    is_label_free,
    kmeans_plusplus_seeding,
    max_coverage,
    max_entropy,
    mean_std,
    probcover,
    purity_radius,
    random_sampling,
    schedule,
    typicality,
    typicality_scores,
    typiclust,
)
from skal_cxr.strategies._embedding import labeled_images

# -- typicality ------------------------------------------------------------


def test_typicality_scores_known_answer():
    # 1-D points; k=2: point 1.0 has neighbours 0.9 and 1.1 at 0.1 -> 1 / 0.1
    scores = typicality_scores([[0.0], [0.9], [1.0], [1.1], [2.0]], n_neighbors=2)
    np.testing.assert_allclose(scores, 1 / np.array([0.95, 0.15, 0.1, 0.15, 0.95]))
    assert typicality_scores([[3.0]]).tolist() == [0.0]  # a lone point is not typical


# three 1-D clusters: A (5 points near 0), B (3 near 100), C (4 near 200)
LINE = np.array([0.0, 0.9, 1.0, 1.1, 2.0, 100, 101, 103, 200, 201, 201.2, 205])[:, None]


def test_typiclust_two_clusters_known_picks():
    # nothing labeled, 2 picks: the larger cluster first, each its most typical point
    pts = LINE[:8]
    positions, scores = typiclust(pts, np.zeros(8, bool), 2, n_neighbors=2, random_state=0)
    assert positions.tolist() == [2, 6]  # 1.0 (typicality 10), then 101 (1 / 1.5)
    np.testing.assert_allclose(scores, [10.0, 1 / 1.5])


def test_typiclust_skips_covered_clusters():
    labeled = np.zeros(len(LINE), bool)
    labeled[0] = True  # cluster A is covered: C (4 points) then B (3 points)
    positions, _ = typiclust(LINE, labeled, 2, n_neighbors=2, random_state=0)
    assert positions.tolist() == [9, 6]  # 201 (mean distance 0.6), then 101


def test_typicality_strategy_is_label_free_and_reads_x_training():
    rng = np.random.default_rng(0)
    # two kinds of 6x6 images: bright left half (12 images) or bright right half (8)
    left = np.zeros((12, 6, 6))
    left[:, :, :3] = 1
    right = np.zeros((8, 6, 6))
    right[:, :, 3:] = 1
    X = np.concatenate([left, right]) + rng.normal(0, 0.05, (20, 6, 6))
    unfitted = SimpleNamespace(estimator=MCDropoutCNN(), X_training=None)
    idx, _ = typicality(unfitted, X, 2, random_state=0)
    assert sorted(idx < 12) == [False, True]  # one image of each kind
    # a labeled left image covers the left cluster: the one pick is a right image
    labeled = SimpleNamespace(estimator=MCDropoutCNN(), X_training=X[:1])
    idx, _ = typicality(labeled, X[1:], 1, random_state=0)
    assert idx[0] + 1 >= 12
    idx2, _ = typicality(unfitted, X[1:], 1, X_labeled=X[:1], random_state=0)
    assert idx2.tolist() == idx.tolist()


def test_embedding_errors():
    learner = SimpleNamespace(estimator=None, X_training=None)
    with pytest.raises(ValueError, match="embedding must be"):
        typicality(learner, np.zeros((5, 4, 4)), 1, embedding="pixels")
    with pytest.raises(ValueError, match="precomputed"):
        typicality(learner, np.zeros((5, 4, 4)), 1, embedding="precomputed")


# -- ProbCover -----------------------------------------------------------------


def test_purity_radius_known_answer():
    # clusters {0, 1, 2} and {10, 11}: the rows' nearest other-cluster rows lie at
    # 10, 9, 8 and 8, 9; a row is impure once delta reaches that distance
    X = np.array([[0.0], [1], [2], [10], [11]])
    # alpha=0.5 allows 2 impure rows: delta=8 (2 impure), not 9 (4 impure)
    assert purity_radius(X, 2, alpha=0.5, random_state=0) == 8.0
    assert purity_radius(X, 2, alpha=0.5, deltas=[1, 8.5, 9.5], random_state=0) == 8.5
    with pytest.warns(UserWarning, match="No delta"):
        assert purity_radius(X, 2, alpha=0.5, deltas=[9.0, 9.5], random_state=0) == 9.0
    assert purity_radius(X, 2, alpha=0.1, random_state=0) == 9.0  # 4 impure allowed
    assert purity_radius(X, 2, alpha=0.9, random_state=0) == 4.0  # none: half of 8


def test_max_coverage_known_answer():
    X = np.array([[0.0], [1], [2], [3], [10], [11]])
    positions, gains = max_coverage(X, np.zeros(6, bool), 2, delta=1.0, random_state=0)
    # ball(1) = {0, 1, 2}, ball(2) = {1, 2, 3}: tie, then the rest of the line or {10, 11}
    assert set(positions[:1]) <= {1, 2} and gains.tolist() == [3.0, 2.0]
    labeled = np.array([False, False, True, False, False, False])
    positions, gains = max_coverage(X, labeled, 1, delta=1.0, random_state=0)
    assert positions[0] in (4, 5) and gains.tolist() == [2.0]


# -- BADGE ------------------------------------------------------------------


def test_gradient_embeddings_by_hand():
    probas = np.array([[0.7, 0.3], [0.2, 0.8]])
    features = np.array([[1.0, 2.0], [3.0, -1.0]])
    # row 0: (p - e_0) = (-0.3, 0.3); row 1: (p - e_1) = (0.2, -0.2)
    expected = np.array([[-0.3, -0.6, 0.3, 0.6], [0.6, -0.2, -0.6, 0.2]])
    np.testing.assert_allclose(gradient_embeddings(probas, features), expected)
    samples = np.stack([probas - 0.1 * np.array([1, -1]), probas + 0.1 * np.array([1, -1])])
    np.testing.assert_allclose(gradient_embeddings(samples, features), expected)


def test_kmeans_plusplus_first_pick_and_zero_distances():
    G = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [1.0, 0.0]])
    positions, scores = kmeans_plusplus_seeding(G, 2, random_state=0)
    assert positions[0] == 1 and scores[0] == 25.0
    # after [3, 4]: D^2 = 25, -, 20, 20 (row 0 most likely but not certain)
    duplicates = np.ones((3, 2))
    positions, scores = kmeans_plusplus_seeding(duplicates, 3, random_state=0)
    assert sorted(positions) == [0, 1, 2] and scores[1:].tolist() == [0.0, 0.0]


class _LinearNet:
    """A fitted logistic regression that embeds images as their own features."""

    def __init__(self, clf):
        self.clf, self.random_state = clf, 0

    def predict_proba(self, X):
        return self.clf.predict_proba(X)

    def embed(self, X):
        return np.asarray(X)


# -- scikit-activeml cross-checks -----------------------------------------

skactiveml = pytest.importorskip("skactiveml")


def _skal_labels(n, labeled_idx, y):
    y_sk = np.full(n, np.nan)
    y_sk[labeled_idx] = y[labeled_idx]
    return y_sk


def test_typiclust_matches_scikit_activeml():
    from skactiveml.pool import TypiClust

    sizes = [40, 34, 28, 22, 16, 10]
    X, y = make_blobs(
        sizes, centers=[[20 * i, (-1) ** i * 5] for i in range(6)], cluster_std=1.0, random_state=0
    )
    labeled_idx = np.array([0, 45])  # one point of each of the two largest blobs
    labeled = np.zeros(len(X), bool)
    labeled[labeled_idx] = True
    ours, _ = typiclust(X, labeled, 4, n_neighbors=20, random_state=0)
    theirs = TypiClust(k=20, random_state=0).query(
        X, _skal_labels(len(X), labeled_idx, y.astype(float)), batch_size=4
    )
    assert ours.tolist() == list(theirs)


def test_probcover_matches_scikit_activeml():
    from skactiveml.pool import ProbCover

    # two classes made of sub-blobs of distinct sizes
    centers = [[0, 0], [0, 10], [0, 20], [40, 0], [40, 10]]
    X, y = make_blobs([30, 18, 9, 24, 12], centers=centers, cluster_std=0.8, random_state=3)
    deltas = np.arange(0.2, 1.2, 0.2)
    labeled_idx = np.array([0])
    labeled = np.zeros(len(X), bool)
    labeled[labeled_idx] = True
    delta = purity_radius(X, 2, alpha=0.95, deltas=deltas, random_state=0)
    ours, _ = max_coverage(X, labeled, 4, delta, random_state=0)
    qs = ProbCover(n_classes=2, deltas=deltas, alpha=0.95, random_state=0)
    theirs, utilities = qs.query(
        X, _skal_labels(len(X), labeled_idx, y.astype(float)), batch_size=4, return_utilities=True
    )
    # each step's best coverage is unique here, so no tie-breaking is compared
    assert all(np.sum(u == np.nanmax(u)) == 1 for u in utilities)
    assert qs.delta_max_ == delta
    assert ours.tolist() == list(theirs)


def test_badge_matches_scikit_activeml():
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import Badge

    X, y = make_blobs(60, centers=3, cluster_std=2.0, random_state=2)
    labeled_idx = np.arange(0, 60, 6)
    y_sk = _skal_labels(len(X), labeled_idx, y.astype(float))
    clf = SklearnClassifier(LogisticRegression(), classes=[0, 1, 2]).fit(X, y_sk)
    _, utilities = Badge(random_state=0).query(
        X, y_sk, clf, fit_clf=False, batch_size=2, return_utilities=True
    )
    pool = np.setdiff1d(np.arange(60), labeled_idx)
    learner = SimpleNamespace(estimator=_LinearNet(clf.estimator_), X_training=X[labeled_idx])
    idx, scores = badge(learner, X[pool], 2, random_state=0)
    # the first pick (largest gradient norm) and the D^2 distribution after it
    assert pool[idx[0]] == np.nanargmax(utilities[0])
    g = gradient_embeddings(clf.predict_proba(X[pool]), X[pool])
    d2 = np.minimum((g**2).sum(1), ((g - g[idx[0]]) ** 2).sum(1))
    d2[idx[0]] = 0
    np.testing.assert_allclose(d2 / d2.sum(), np.nan_to_num(utilities[1][pool]), atol=1e-12)
    assert scores[0] == pytest.approx((g[idx[0]] ** 2).sum())


# -- schedules and the learner --------------------------------------------


def _marker(name, label_free=False):
    def strategy(learner, X_pool, n_instances=1, *, random_state=None, embedding=None):
        calls.append((name, embedding))
        return np.arange(n_instances), np.zeros(n_instances)

    strategy.__name__ = name
    strategy.label_free = label_free
    return strategy


calls = []


def test_schedule_switches_on_labeled_count():
    calls.clear()
    first, second = _marker("first", True), _marker("second")
    strategy = schedule([(first, 3), (second, None)])
    assert strategy.__name__ == "first>second@3"
    X = np.zeros((10, 2, 2))
    for n_labeled, expected in [(0, "first"), (2, "first"), (3, "second"), (7, "second")]:
        learner = SimpleNamespace(X_training=None if n_labeled == 0 else X[:n_labeled])
        strategy(learner, X, 2, embedding="pca")
        assert calls[-1] == (expected, "pca")
    strategy(SimpleNamespace(X_training=None), X, 1, X_labeled=X[:5])
    assert calls[-1][0] == "second"
    assert is_label_free(strategy) and not is_label_free(strategy, 3)
    assert is_label_free(random_sampling) and not is_label_free(mean_std)
    assert is_label_free(functools.partial(typicality, embedding="pca"))
    assert is_label_free(
        schedule([(functools.partial(typicality, n_neighbors=5), 3), (mean_std, None)])
    )


def test_schedule_errors():
    with pytest.raises(ValueError, match="at least one"):
        schedule([])
    with pytest.raises(ValueError, match="only the last"):
        schedule([(typicality, None), (mean_std, None)])
    with pytest.raises(ValueError, match="increase"):
        schedule([(typicality, 20), (max_entropy, 10), (mean_std, None)])
    with pytest.raises(ValueError, match="no stage for 5"):
        schedule([(typicality, 5)])(
            SimpleNamespace(X_training=np.zeros((5, 2, 2))), np.zeros((8, 2, 2)), 1
        )


def test_active_learner_cold_start_with_a_label_free_strategy():
    rng = np.random.default_rng(0)
    X = rng.random((30, 8, 8), dtype=np.float32)
    y = np.tile([0, 1], 15)
    learner = ActiveLearner(
        MCDropoutCNN(max_epochs=1, random_state=0),
        query_strategy=schedule([(typicality, 4), (max_entropy, None)]),
        random_state=0,
    )
    idx, _ = learner.query(X, n_instances=4)  # no labels, no fit
    assert not hasattr(learner, "estimator_") and len(set(idx)) == 4
    learner.teach(X[idx], y[idx])
    assert learner.history_[0]["query_indices"].tolist() == idx.tolist()
    # the labeled set lives in X_training_ (the X_training parameter stays None)
    assert learner.X_training is None
    np.testing.assert_array_equal(np.asarray(labeled_images(learner)).reshape(4, 8, 8), X[idx])
    rest = np.setdiff1d(np.arange(30), idx)
    idx2, _, scores = learner.query(X[rest], n_instances=2, return_metrics=True)
    assert np.all(scores >= 0) and len(set(idx2)) == 2  # max entropy scores
    with pytest.raises(NotFittedError, match="no labeled data"):
        ActiveLearner(MCDropoutCNN(), query_strategy=max_entropy).query(X, 2)


def test_probcover_strategy_on_precomputed_features():
    X, _ = make_blobs([20, 10], centers=[[0, 0], [30, 0]], cluster_std=1.0, random_state=0)
    learner = SimpleNamespace(estimator=None, X_training=None)
    idx, gains = probcover(learner, X, 2, embedding="precomputed", random_state=0)
    assert sorted(idx >= 20) == [False, True] and gains[0] >= gains[1] > 0


def test_label_free_query_picks_without_a_learner_and_refuses_a_strategy_needing_labels():
    from skal_cxr.strategies import bald, label_free_query, probcover

    X = np.random.default_rng(0).normal(size=(40, 3))
    picks, scores = label_free_query(
        probcover, X, 4, random_state=np.random.default_rng(5), embedding="precomputed"
    )
    expected, expected_scores = probcover(
        None, X, 4, embedding="precomputed", random_state=np.random.default_rng(5)
    )
    np.testing.assert_array_equal(picks, expected)
    np.testing.assert_array_equal(scores, expected_scores)
    with pytest.raises(ValueError, match="bald needs labels"):
        label_free_query(bald, X, 4)

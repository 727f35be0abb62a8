"""Strategies on a frozen view: the label-free guard and DropQuery, with known answers."""

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from skal_cxr import ActiveLearner, FrozenViewClassifier
from skal_cxr.embeddings import PixelPCA
from skal_cxr.strategies import (
    classes_have_k,
    dropquery,
    dropquery_select,
    inconsistency_scores,
    is_label_free,
    max_entropy,
    typicality,
    typicality_until_k_then,
)

# -- the guard -------------------------------------------------------------


def test_classes_have_k_known_answers():
    assert not classes_have_k(None, 1)
    assert classes_have_k(None, 0)
    assert not classes_have_k([0, 0, 0], 2)  # one class seen: at least two needed
    assert classes_have_k([0, 0, 1, 1], 2) and not classes_have_k([0, 0, 1], 2)
    assert not classes_have_k([0, 0, 1, 1], 2, classes=[0, 1, 2])
    assert classes_have_k(["a", "b", "a", "b", "c", "c"], 2, classes=["a", "b", "c"])


def _recording(strategy, log):
    def recorded(learner, X_pool, n_instances=1, **kwargs):
        log.append(strategy.__name__)
        return strategy(learner, X_pool, n_instances, **kwargs)

    recorded.__name__ = strategy.__name__
    recorded.label_free = getattr(strategy, "label_free", False)
    return recorded


def _images(points):
    """2-D points as 1x2-pixel images (PixelPCA with 2 components is then an isometry)."""
    return points.astype(np.float32)[:, None, None, :]


def test_guard_stays_label_free_until_each_class_has_k_labels():
    # class 1 is rare (12 of 120) and lies in a small blob: typicality finds it late
    points, y = make_blobs([60, 48, 12], centers=[[0, 0], [8, 0], [4, 8]], random_state=0)
    y = (y == 2).astype(int)
    X = _images(points)
    view = PixelPCA(n_components=2, random_state=0).fit(X)
    log = []
    guard = typicality_until_k_then(
        _recording(max_entropy, log), k=2, first=_recording(typicality, log)
    )
    assert is_label_free(guard) and is_label_free(guard, 1) and not is_label_free(guard, 2)
    learner = ActiveLearner(
        FrozenViewClassifier(view, n_steps=30, random_state=0), query_strategy=guard, random_state=0
    )
    pool = np.arange(len(X))
    for _ in range(12):
        labels_before = None if not hasattr(learner, "y_training_") else learner.y_training_
        idx, _ = learner.query(X[pool], n_instances=2)
        expected = "max_entropy" if classes_have_k(labels_before, 2) else "typicality"
        assert log[-1] == expected
        learner.teach(X[pool[idx]], y[pool[idx]])
        pool = np.delete(pool, idx)
    assert "typicality" in log and "max_entropy" in log
    switch = log.index("max_entropy")
    assert set(log[:switch]) == {"typicality"} and set(log[switch:]) == {"max_entropy"}
    # the switch came once the rare class had its 2 labels, not at a count of labels
    first_labels = learner.y_training_[: 2 * switch]
    assert np.bincount(first_labels, minlength=2).min() >= 2
    assert np.bincount(first_labels[: 2 * switch - 2], minlength=2).min() < 2


def test_guard_counts_every_class_of_the_estimator():
    guard = typicality_until_k_then(max_entropy, k=1)
    est = FrozenViewClassifier(classes=[0, 1, 2])
    learner = SimpleNamespace(estimator=est, y_training=np.array([0, 1, 0, 1]))
    assert guard.stage(learner.y_training, learner) is typicality
    assert guard.stage(np.array([0, 1, 2]), learner) is max_entropy
    assert typicality_until_k_then(max_entropy, k=0).stage(None) is max_entropy
    with pytest.raises(ValueError, match="non-negative"):
        typicality_until_k_then(max_entropy, k=-1)


skactiveml = pytest.importorskip("skactiveml")


def test_typicality_in_the_view_matches_scikit_activeml():
    from skactiveml.pool import TypiClust

    sizes = [40, 34, 28, 22, 16, 10]
    points, y = make_blobs(
        sizes, centers=[[20 * i, (-1) ** i * 5] for i in range(6)], cluster_std=1.0, random_state=0
    )
    X = _images(points)
    view = PixelPCA(n_components=2, random_state=0).fit(X)
    features = view.transform(X)
    labeled = np.array([0, 45])  # one image of each of the two largest blobs
    pool = np.setdiff1d(np.arange(len(X)), labeled)
    learner = SimpleNamespace(
        estimator=FrozenViewClassifier(view), X_training=X[labeled], y_training=np.array([0, 1])
    )
    # two labels, one per class: k=2 keeps the guard on typicality, in the view's features
    ours, _ = typicality_until_k_then(max_entropy, k=2)(learner, X[pool], 4, random_state=0)
    y_known = np.full(len(X), np.nan)
    y_known[labeled] = y[labeled]
    theirs = TypiClust(k=20, random_state=0).query(features, y_known, batch_size=4)
    assert pool[ours].tolist() == list(theirs)


# -- DropQuery -------------------------------------------------------------


def test_inconsistency_scores_known_answer():
    probas = np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]])
    samples = np.array(
        [
            [[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]],
            [[0.4, 0.6], [0.8, 0.2], [0.3, 0.7]],
            [[0.7, 0.3], [0.1, 0.9], [0.6, 0.4]],
            [[0.8, 0.2], [0.9, 0.1], [0.1, 0.9]],
        ]
    )
    # reference classes 0, 1, 0: changed in 1/4, 3/4 and 3/4 of the samples
    np.testing.assert_allclose(inconsistency_scores(probas, samples), [0.25, 0.75, 0.75])


# candidates 0-2 near (0, 0) (centre (1, 0)) and 3-5 near (10, 10) (centre (10, 11));
# images 6-8 sit close to those centres but their predictions never change
FEATURES = np.array(
    [[0, 0], [1, 0], [2, 0], [10, 10], [10, 11], [10, 12.5], [1, 0.2], [10, 11.1], [5, 5]],
    dtype=float,
)
INCONSISTENCY = np.array([0.6, 0.8, 0.6, 0.7, 0.9, 0.6, 0.0, 0.5, 0.1])


def test_dropquery_select_picks_the_candidates_nearest_the_centres():
    positions, scores = dropquery_select(FEATURES, INCONSISTENCY, 2, random_state=0)
    # cluster {3, 4, 5}: centre (10, 11.17), nearest 4; cluster {0, 1, 2}: nearest 1
    assert sorted(positions.tolist()) == [1, 4]
    np.testing.assert_allclose(sorted(scores), [0.8, 0.9])
    # threshold 0.5 is strict: image 7 (0.5) is no candidate; 7 picks for 6 candidates
    positions, _ = dropquery_select(FEATURES, INCONSISTENCY, 7, random_state=0)
    assert set(positions[:6]) == {0, 1, 2, 3, 4, 5} and positions[6] in (6, 7, 8)
    positions, _ = dropquery_select(FEATURES, np.zeros(9), 3, random_state=0)
    assert len(set(positions)) == 3  # no candidate: random picks


class _Fixed:
    """A fitted estimator with known probabilities, MC samples and features."""

    random_state = 0

    def __init__(self, probas, samples, features):
        self.probas, self.samples, self.features = probas, samples, features

    def predict_proba(self, X):
        return self.probas[self._rows(X)]

    def predict_proba_samples(self, X, n_mc_samples=None):
        return self.samples[:, self._rows(X)]

    def embed(self, X):
        return self.features[self._rows(X)]

    @staticmethod
    def _rows(X):
        return np.asarray(X).reshape(len(X), -1)[:, 0].astype(int)


def test_dropquery_strategy_on_known_outputs():
    n = len(FEATURES)
    probas = np.tile([0.8, 0.2], (n, 1))
    # 10 samples per image: the first round(10 * inconsistency) predict class 1
    samples = np.tile([0.8, 0.2], (10, n, 1))
    for i, frac in enumerate(INCONSISTENCY):
        samples[: int(round(10 * frac)), i] = [0.3, 0.7]
    est = _Fixed(probas, samples, FEATURES)
    pool = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    idx, scores = dropquery(SimpleNamespace(estimator=est), pool, 2, random_state=0)
    assert sorted(idx.tolist()) == [1, 4]
    idx, _ = dropquery(SimpleNamespace(estimator=est), pool[::-1], 2, random_state=0)
    assert sorted((n - 1 - idx).tolist()) == [1, 4]  # positions map back to the pool


def test_dropquery_with_a_frozen_view_classifier():
    points, y = make_blobs([40, 40], centers=[[0, 0], [3, 0]], random_state=0)
    X = _images(points)
    view = PixelPCA(n_components=2, random_state=0).fit(X)
    clf = FrozenViewClassifier(view, n_steps=50, input_dropout=0.5, random_state=0)
    clf.fit(X[::8], y[::8])
    idx, scores = dropquery(SimpleNamespace(estimator=clf), X, 4, random_state=0)
    assert len(set(idx)) == 4 and np.all((scores >= 0) & (scores <= 1))


def test_the_guard_reads_the_view_of_the_estimator():
    from skal_cxr.strategies._guard import view_of

    X = _images(np.random.default_rng(0).normal(size=(10, 2)))
    view = PixelPCA(n_components=2, random_state=0).fit(X)
    assert view_of(SimpleNamespace(estimator=FrozenViewClassifier(view))).encoder_ is view
    fitted = FrozenViewClassifier(PixelPCA(n_components=2), n_steps=2).fit(X, [0, 1] * 5)
    assert view_of(SimpleNamespace(estimator_=fitted)).encoder_ is fitted.encoder_
    assert view_of(SimpleNamespace(estimator=FrozenViewClassifier())) is None
    assert view_of(SimpleNamespace(estimator=None)) is None

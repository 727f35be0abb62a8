"""Large pools are scored chunk by chunk, with the same answers."""

from types import SimpleNamespace

import numpy as np
import pytest

from skal_cxr import MCDropoutCNN
from skal_cxr.strategies import STRATEGIES, class_balanced
from skal_cxr.strategies._base import QueryContext


@pytest.fixture(scope="module")
def learner_and_pool():
    rng = np.random.default_rng(0)
    X = rng.random((150, 12, 12), dtype=np.float32)
    y = np.arange(150) % 3
    net = MCDropoutCNN(
        max_epochs=1,
        min_train_steps=0,
        batch_size=16,
        random_state=0,
        module__width=4,
        module__n_blocks=1,
    ).fit(X[:60], y[:60])
    return SimpleNamespace(estimator=net, X_training=X[:60]), X[60:]


@pytest.mark.parametrize(
    "name",
    [
        "max_entropy",
        "margin",
        "least_confident",
        "mean_std",
        "variation_ratios",
        "bald",
        "power_bald",
    ],
)
def test_chunked_scoring_gives_the_same_query(learner_and_pool, monkeypatch, name):
    learner, X_pool = learner_and_pool
    whole = STRATEGIES[name](learner, X_pool, n_instances=7, random_state=1)
    calls = []
    net = learner.estimator
    original = net.reduce_proba_samples
    monkeypatch.setattr(QueryContext, "chunk_size", 20)
    monkeypatch.setattr(
        net,
        "reduce_proba_samples",
        lambda *a, **k: calls.append(k["chunk_size"]) or original(*a, **k),
        raising=False,
    )
    monkeypatch.setattr(net, "predict_proba_samples", None)  # must not be needed
    chunked = STRATEGIES[name](learner, X_pool, n_instances=7, random_state=1)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_allclose(chunked[1], whole[1])
    assert calls == [20]


def test_chunked_class_balanced_keeps_the_class_quotas(learner_and_pool, monkeypatch):
    """Chunked, the wrapper's inner strategy draws fresh samples on each class's
    candidates, so the picks may differ; the quotas come from the same MC mean."""
    learner, X_pool = learner_and_pool
    predicted = learner.estimator.predict_proba_samples(X_pool).mean(axis=0).argmax(axis=1)
    whole, _ = class_balanced(STRATEGIES["bald"])(learner, X_pool, n_instances=6, random_state=2)
    monkeypatch.setattr(QueryContext, "chunk_size", 20)
    chunked, _ = class_balanced(STRATEGIES["bald"])(learner, X_pool, n_instances=6, random_state=2)
    assert len(np.unique(chunked)) == 6
    np.testing.assert_array_equal(
        np.bincount(predicted[chunked], minlength=3), np.bincount(predicted[whole], minlength=3)
    )

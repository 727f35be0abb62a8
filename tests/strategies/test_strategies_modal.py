"""Our strategies inside modAL's own ActiveLearner (modAL-python 0.4.2.1).

modAL is a test dependency, installed with ``--no-deps`` (its pins are
outdated), so it is imported directly: this test must run, not skip. Only the
initial fit and ``query`` are used; modAL's ``teach`` passes the
``force_all_finite`` argument that scikit-learn 1.8 removed.

modAL's ``query`` unpacks the strategy's result as ``(indices, metrics)`` and,
when that fails, calls the strategy a second time; so these tests count both
the strategy calls and the model's passes over the pool.
"""

import functools

import numpy as np
import pytest
from modAL.models import ActiveLearner as ModalActiveLearner

from skal_cxr import MCDropoutCNN
from skal_cxr.strategies import STRATEGIES, class_balanced

MODEL_METHODS = ("predict_proba", "predict_proba_samples", "reduce_proba_samples", "embed")


@pytest.fixture(scope="module")
def modal_learner():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    X = rng.normal(0.3 + 0.4 * y[:, None, None], 0.1, (80, 8, 8)).astype(np.float32)
    net = MCDropoutCNN(
        max_epochs=2,
        module__width=4,
        module__n_blocks=1,
        n_mc_samples=5,
        random_state=0,
        device="cpu",
    )
    learner = ModalActiveLearner(
        estimator=net, query_strategy=STRATEGIES["bald"], X_training=X[:10], y_training=y[:10]
    )
    return learner, X[10:]


def _counting(strategy, calls):
    @functools.wraps(strategy)
    def counted(*args, **kwargs):
        calls.append("strategy")
        return strategy(*args, **kwargs)

    return counted


@pytest.fixture
def spied(modal_learner, monkeypatch):
    """The modAL learner, with every model pass over the pool recorded."""
    learner, X_pool = modal_learner
    calls = []
    net = learner.estimator
    for method in MODEL_METHODS:
        original = getattr(net, method)

        def spy(X, *args, _original=original, _method=method, **kwargs):
            if len(X) == len(X_pool):
                calls.append(_method)
            return _original(X, *args, **kwargs)

        monkeypatch.setattr(net, method, spy)
    return learner, X_pool, calls


def _strategy(name):
    return class_balanced(STRATEGIES["bald"]) if name == "class_balanced" else STRATEGIES[name]


@pytest.mark.parametrize("n_instances", [2, 5])
@pytest.mark.parametrize("name", sorted(STRATEGIES) + ["class_balanced"])
def test_strategy_runs_once_in_modal(name, n_instances, spied):
    learner, X_pool, calls = spied
    learner.query_strategy = _counting(_strategy(name), calls)
    idx, X_query, scores = learner.query(X_pool, n_instances=n_instances, return_metrics=True)
    assert len(set(idx)) == n_instances  # n_instances=2 is not misread as (index, score)
    np.testing.assert_array_equal(X_query, X_pool[idx])
    assert np.shape(scores) == (n_instances,)
    # one strategy call, one model pass over the pool (none for the label-free
    # strategies; BADGE needs probabilities and embeddings: two; DropQuery also
    # the prediction with dropout off: three)
    # (the guard has its 5 labels per class here: max entropy's pass)
    if name in ("random", "typicality", "probcover", "typicality_then_max_entropy"):
        model_passes = []
    elif name == "badge":
        model_passes = ["predict_proba_samples", "embed"]
    elif name == "dropquery":
        model_passes = ["predict_proba_samples", "predict_proba", "embed"]
    else:
        model_passes = [calls[1]]
    assert calls == ["strategy"] + model_passes
    assert set(model_passes) <= set(MODEL_METHODS)
    # seeded through the estimator's random_state: modAL's learner has none
    np.testing.assert_array_equal(idx, learner.query(X_pool, n_instances=n_instances)[0])

"""Our strategies inside modAL's own ActiveLearner (modAL-python 0.4.2.1).

modAL is a test dependency, installed with ``--no-deps`` (its pins are
outdated), so it is imported directly: this test must run, not skip. Only the
initial fit and ``query`` are used; modAL's ``teach`` passes the
``force_all_finite`` argument that scikit-learn 1.8 removed.
"""

import numpy as np
import pytest
from modAL.models import ActiveLearner as ModalActiveLearner

from skal_cxr import MCDropoutCNN
from skal_cxr.strategies import STRATEGIES, class_balanced


@pytest.fixture(scope="module")
def modal_learner():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    X = rng.normal(0.3 + 0.4 * y[:, None, None], 0.1, (80, 8, 8)).astype(np.float32)
    net = MCDropoutCNN(max_epochs=2, module__width=4, module__n_blocks=1, n_mc_samples=5,
                       random_state=0, device="cpu")
    learner = ModalActiveLearner(estimator=net, query_strategy=STRATEGIES["bald"],
                                 X_training=X[:10], y_training=y[:10])
    return learner, X[10:]


@pytest.mark.parametrize("name", sorted(STRATEGIES) + ["class_balanced"])
def test_strategy_runs_in_modal(name, modal_learner):
    learner, X_pool = modal_learner
    learner.query_strategy = (
        class_balanced(STRATEGIES["bald"]) if name == "class_balanced" else STRATEGIES[name]
    )
    idx, X_query = learner.query(X_pool, n_instances=5)
    assert len(set(idx)) == 5
    np.testing.assert_array_equal(X_query, X_pool[idx])
    # seeded through the estimator's random_state: modAL's learner has none
    np.testing.assert_array_equal(idx, learner.query(X_pool, n_instances=5)[0])

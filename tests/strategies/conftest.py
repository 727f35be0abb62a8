"""Fixtures of the strategy tests (the fakes live in ``_strategy_fakes``)."""

from types import SimpleNamespace

import numpy as np
import pytest
from _strategy_fakes import N_POOL, FakeMC, FakeProba, make_table
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer


@pytest.fixture
def table():
    return make_table()


@pytest.fixture
def pool():
    """Fake images: image ``i`` is a constant 4x4 image of value ``i``."""
    ids = np.arange(N_POOL, dtype=np.float32)
    return np.repeat(np.repeat(ids[:, None, None], 4, axis=1), 4, axis=2)


@pytest.fixture
def learner(table):
    """A modAL-like learner around a fitted fake MC estimator."""
    return SimpleNamespace(estimator=FakeMC(table, random_state=0).fit(None, None), X_training=None)


@pytest.fixture
def pipeline_learner(table):
    pipe = Pipeline(
        [
            ("double", FunctionTransformer(lambda X: 2 * X)),
            ("clf", FakeMC(table, scale=2.0, random_state=0)),
        ]
    )
    return SimpleNamespace(estimator=pipe.fit(np.zeros((2, 4, 4)), [0, 1]), X_training=None)


@pytest.fixture
def proba_learner(table):
    return SimpleNamespace(
        estimator=FakeProba(table, random_state=0).fit(None, None), X_training=None
    )

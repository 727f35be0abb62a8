"""Fake estimators with known outputs, shared by the strategy tests.

Image ``i`` of the fake pool is a constant 4x4 image of value ``i``, so a fake
estimator can read each image's identity from its pixels and return rows of a
fixed table. That makes every score known in advance and lets tests check that
returned indices point at the right images.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from skal_cxr.strategies import STRATEGIES, bald, class_balanced, random_sampling

N_POOL, N_SAMPLES, N_CLASSES = 40, 8, 3

MC_STRATEGIES = {"mean_std", "variation_ratios", "bald", "batch_bald", "power_bald", "dropquery"}

ALL_STRATEGIES = {
    **STRATEGIES,
    "class_balanced_bald": class_balanced(bald),
    "class_balanced_random": class_balanced(random_sampling),
}


class FakeProba(ClassifierMixin, BaseEstimator):
    """Reads image ids from pixels (divided by ``scale``); only ``predict_proba``."""

    def __init__(self, table, scale=1.0, random_state=None):
        self.table = table
        self.scale = scale
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.arange(self.table.shape[2])
        return self

    def ids(self, X):
        values = np.asarray(X, dtype=np.float64).reshape(len(X), -1) / self.scale
        ids = np.rint(values).astype(int)
        if not (np.allclose(values, ids) and (ids == ids[:, :1]).all()):
            raise AssertionError("image is not a fake image: wrong transform?")
        ids = ids[:, 0]
        self.seen_ids_ = ids
        return ids

    def predict_proba(self, X):
        return self.table[:, self.ids(X)].mean(axis=0)


class FakeMC(FakeProba):
    """Adds ``predict_proba_samples`` (rows of ``table``) and ``embed``."""

    def predict_proba_samples(self, X, n_mc_samples=None):
        self.n_calls_ = getattr(self, "n_calls_", 0) + 1
        return self.table[:n_mc_samples, self.ids(X)]

    def embed(self, X):
        return self.table[:, self.ids(X)].transpose(1, 0, 2).reshape(len(X), -1)


def make_table(seed=0):
    """MC probabilities of shape (N_SAMPLES, N_POOL, N_CLASSES), distinct per image."""
    rng = np.random.default_rng(seed)
    alphas = rng.uniform(0.2, 5.0, size=N_POOL)
    return np.stack([rng.dirichlet(np.full(N_CLASSES, a), size=N_SAMPLES) for a in alphas], axis=1)

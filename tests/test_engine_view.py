"""The round engine's model setting and the pool's view (engine/_config.py, engine/_view.py)."""

import numpy as np
import pytest

from skal_cxr import FrozenViewClassifier, MCDropoutCNN
from skal_cxr.datasets import make_cxr_phantoms
from skal_cxr.embeddings import ContrastiveEncoder
from skal_cxr.engine import (
    LEGACY_MODEL,
    ActiveLoop,
    RoundConfig,
    _view,
    build_estimator,
    pool_view,
    view_encoder,
)
from skal_cxr.exceptions import ConfigError

VIEW = {"max_epochs": 1, "width": 4, "n_blocks": 2, "batch_size": 32, "projection_dim": 8}
HEAD = {"n_steps": 20, "hidden_units": 8}


@pytest.fixture
def pool():
    X, y = make_cxr_phantoms(80, image_size=16, n_classes=2, random_state=0)
    return X, y


@pytest.fixture
def fits(monkeypatch):
    """Count the encoder's fits; start from an empty in-memory cache."""
    monkeypatch.setattr(_view, "_MEMO", type(_view._MEMO)())
    calls = []
    original = ContrastiveEncoder.fit

    def counted(self, X, y=None):
        calls.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(ContrastiveEncoder, "fit", counted)
    return calls


def test_a_stored_configuration_without_a_model_key_is_the_cnn():
    old = RoundConfig.from_params(strategy="random").to_dict()
    for key in ("model", "view", "head"):  # as written before the view existed
        del old[key]
    config = RoundConfig.from_dict(old)
    assert config.model == LEGACY_MODEL == "cnn"
    assert isinstance(build_estimator(old, 2), MCDropoutCNN)
    assert isinstance(build_estimator(config, 2), MCDropoutCNN)
    # a stored model is kept, and an override wins
    assert RoundConfig.from_dict({**old, "model": "view"}).model == "view"
    assert RoundConfig.from_dict(old, model="view").model == "view"


def test_new_configurations_default_to_the_view_and_check_its_settings():
    config = RoundConfig.from_params(strategy="random")
    assert config.model == "view"
    assert config.view["max_epochs"] == 5 and config.head["n_steps"] == 300
    assert RoundConfig.from_params(model="cnn").model == "cnn"
    merged = RoundConfig.from_params(view={"max_epochs": 2}, head={"dropout": 0.25})
    assert merged.view["max_epochs"] == 2 and merged.view["width"] == 16
    assert merged.head["dropout"] == 0.25 and merged.head["hidden_units"] == 128
    with pytest.raises(ConfigError, match="model must be one of view, cnn; got 'vit'"):
        RoundConfig.from_params(model="vit")
    with pytest.raises(ConfigError, match="unknown view setting 'depth'"):
        RoundConfig.from_params(view={"depth": 3})
    with pytest.raises(ConfigError, match="max_epochs"):
        RoundConfig.from_params(view={"max_epochs": -1})
    with pytest.raises(ConfigError, match="dropout"):
        RoundConfig.from_params(head={"dropout": 1.5})
    assert RoundConfig.from_dict(merged.to_dict()) == merged


def test_build_estimator_puts_the_head_on_the_pools_cached_encoder(pool, fits, tmp_path):
    X, _ = pool
    config = RoundConfig.from_params(strategy="random", seed=3, view=VIEW, head=HEAD)
    est = build_estimator(config, 2, X_pool=X, cache_dir=tmp_path)
    assert isinstance(est, FrozenViewClassifier)
    assert est.random_state == 3 and est.n_steps == 20 and est.class_weight == "balanced"
    assert list(est.classes) == [0, 1]
    assert fits == [80]  # trained once, on the whole pool
    again = build_estimator(config, 2, seed=4, X_pool=X, cache_dir=tmp_path)
    assert again.encoder is est.encoder and fits == [80]  # no second training
    assert again.random_state == 4
    # another process (an empty memory) loads it from the folder: still no training
    _view._MEMO.clear()
    loaded = pool_view(X, config, cache_dir=tmp_path)
    assert fits == [80] and loaded is not est.encoder
    np.testing.assert_array_equal(loaded.transform(X[:5]), est.encoder.transform(X[:5]))
    assert loaded.fit_time_ > 0 and loaded.fit_cpu_time_ > 0
    # another pool, or other view settings, is another encoder
    pool_view(X[:60], config, cache_dir=tmp_path)
    pool_view(X, RoundConfig.from_dict(config.to_dict(), view={**VIEW, "width": 6}))
    assert fits == [80, 60, 80]


def test_the_view_model_needs_the_pool_or_an_encoder(pool, fits):
    X, _ = pool
    config = RoundConfig.from_params(view=VIEW)
    with pytest.raises(ValueError, match="needs the pool"):
        build_estimator(config, 2)
    encoder = view_encoder(config).fit(X)
    assert build_estimator(config, 2, encoder=encoder).encoder is encoder
    assert fits == [80]


def test_an_active_loop_round_with_the_view_model_runs_end_to_end(pool, fits):
    X, y = pool
    config = RoundConfig.from_params(
        strategy="typicality_until_5_then_max_entropy",
        seed=0,
        query_size=5,
        n_mc_samples=4,
        view=VIEW,
        head=HEAD,
    )
    loop = ActiveLoop(config, X, lambda idx: y[idx], [0, 1, 2, 3], n_classes=2)
    assert isinstance(loop.learner.estimator, FrozenViewClassifier)
    first = loop.step(5, 0)
    second = loop.step(5, 1)
    assert first.n_labeled == 4 and second.n_labeled == 9
    assert len(set(first.queried) | set(second.queried)) == 10
    assert not set(first.queried) & {0, 1, 2, 3}
    proba = loop.learner.predict_proba(X[:10])
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert fits == [80]  # one encoder for every round

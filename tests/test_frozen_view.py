"""FrozenViewClassifier: a frozen encoder, the head alone trained and sampled."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimator_tags_renamed,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_param_validation,
    check_parameters_default_constructible,
    check_set_params,
    check_valid_tag_types,
)

from skal_cxr import FrozenViewClassifier, MCDropoutHead
from skal_cxr.embeddings import ContrastiveEncoder, PixelPCA


class CountingPCA(PixelPCA):
    """PixelPCA that counts its fits and the images it transforms (class-wide)."""

    fits = 0
    transformed = 0

    def fit(self, X, y=None):
        type(self).fits += 1
        return super().fit(X, y)

    def transform(self, X):
        type(self).transformed += len(X)
        return super().transform(X)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 40)
    X = rng.normal(0.3 + 0.3 * y[:, None, None], 0.15, (80, 8, 8)).clip(0, 1)
    return (X * 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def encoder(data):
    X, _ = data
    return ContrastiveEncoder(width=4, n_blocks=2, max_epochs=1, batch_size=16, random_state=0).fit(
        X
    )


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_leaves_the_encoder_weights_unchanged(data, encoder):
    X, y = data
    before = _state(encoder.trunk_)
    clf = FrozenViewClassifier(encoder, n_steps=30, random_state=0).fit(X[:20], y[:20])
    assert clf.encoder_ is encoder and not clf.fine_tuned_ and clf.tuned_module_ is None
    assert _same(before, _state(encoder.trunk_))
    tuned = FrozenViewClassifier(
        encoder, fine_tune="all", fine_tune_from=20, n_steps=30, random_state=0
    ).fit(X[:20], y[:20])
    assert tuned.fine_tuned_ and _same(before, _state(encoder.trunk_))  # a copy was trained
    assert not _same(before, _state(tuned.tuned_module_[0]))
    below = clone(tuned).fit(X[:19], y[:19])  # fewer labels than fine_tune_from: frozen
    assert not below.fine_tuned_


def test_trunk_lr_trains_the_encoder_copy_more_slowly(data, encoder):
    X, y = data
    before = _state(encoder.trunk_)

    def moved(**params):
        clf = FrozenViewClassifier(
            encoder, fine_tune_from=0, n_steps=20, lr=1e-2, random_state=0, **params
        ).fit(X[:20], y[:20])
        after = _state(clf.tuned_module_[0])
        return sum(float((after[k].float() - before[k].float()).abs().sum()) for k in before)

    assert 0 < moved(fine_tune="trunk_lr", trunk_lr_factor=0.01) < moved(fine_tune="all")


def test_samples_are_the_heads_on_the_encoders_features(data, encoder):
    X, y = data
    clf = FrozenViewClassifier(encoder, n_steps=30, random_state=0).fit(X[:20], y[:20])
    features = encoder.transform(X)
    np.testing.assert_allclose(clf.embed(X), features, rtol=1e-6)
    head = MCDropoutHead(n_steps=30, random_state=0).fit(features[:20], y[:20])
    np.testing.assert_allclose(
        clf.predict_proba_samples(X, 6), head.predict_proba_samples(features, 6), rtol=1e-5
    )
    np.testing.assert_allclose(clf.predict_proba(X), head.predict_proba(features), rtol=1e-5)
    assert clf.predict(X).shape == (80,) and set(clf.classes_) == {0, 1}


def test_features_are_computed_once_per_image(data):
    X, y = data
    enc = CountingPCA(n_components=5, random_state=0).fit(X)
    CountingPCA.transformed = 0
    clf = FrozenViewClassifier(enc, n_steps=5, random_state=0).fit(X[:20], y[:20])
    for _ in range(3):  # three queries over the shrinking pool
        clf.predict_proba_samples(X[20:])
        clf.predict_proba_samples(X[30:])
    clone(clf).fit(X[:30], y[:30]).predict_proba_samples(X[30:])  # the next round
    assert CountingPCA.transformed == 80


def test_clone_keeps_a_fitted_encoder_and_clones_an_unfitted_one(data, encoder):
    clf = FrozenViewClassifier(encoder, hidden_units=7)
    twin = clone(clf)
    assert twin.encoder is encoder and twin.hidden_units == 7 and twin is not clf
    unfitted = PixelPCA(n_components=3)
    assert clone(FrozenViewClassifier(unfitted)).encoder is not unfitted
    frozen = FrozenEstimator(encoder)
    assert clone(FrozenViewClassifier(frozen)).encoder is frozen


@pytest.mark.parametrize("wrap", [False, True], ids=["fitted", "FrozenEstimator"])
def test_grid_search_over_the_head_does_not_retrain_the_encoder(data, wrap):
    X, y = data
    enc = CountingPCA(n_components=5, random_state=0).fit(X)
    CountingPCA.fits = 0
    search = GridSearchCV(
        FrozenViewClassifier(FrozenEstimator(enc) if wrap else enc, n_steps=20, random_state=0),
        {"hidden_units": [4, 16], "dropout": [0.2, 0.5]},
        cv=3,
    ).fit(X, y)
    assert CountingPCA.fits == 0
    assert search.best_estimator_.encoder_ is (search.best_estimator_.encoder if wrap else enc)


def test_an_unfitted_encoder_is_fitted_on_the_labeled_images(data):
    X, y = data
    enc = PixelPCA(n_components=4, random_state=0)
    clf = FrozenViewClassifier(enc, n_steps=5).fit(X[:20], y[:20])
    assert clf.encoder_ is not enc and clf.encoder_.pca_.n_components_ == 4
    assert not hasattr(enc, "pca_")
    default = FrozenViewClassifier(n_steps=5).fit(X[:20], y[:20])
    assert isinstance(default.encoder_, PixelPCA) and default.embed(X).shape == (80, 20)


def test_fine_tuning_needs_a_feature_module(data):
    X, y = data
    enc = PixelPCA(n_components=4).fit(X)
    with pytest.raises(TypeError, match="feature_module"):
        FrozenViewClassifier(enc, fine_tune="all", fine_tune_from=0, n_steps=2).fit(X, y)


def test_unfitted_raises(data):
    X, _ = data
    for method in ("predict", "predict_proba", "predict_proba_samples", "embed"):
        with pytest.raises(NotFittedError):
            getattr(FrozenViewClassifier(), method)(X)


# scikit-learn's checks that need no data (its data checks feed 2-D tables, which
# an image classifier does not take: see tests/test_common.py); none fails
DATA_FREE_CHECKS = [
    check_estimator_cloneable,
    check_estimator_tags_renamed,
    check_valid_tag_types,
    check_estimator_repr,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_get_params_invariance,
    check_set_params,
    check_do_not_raise_errors_in_init_or_set_params,
    check_mixin_order,
    check_param_validation,
]


@pytest.mark.parametrize("check", DATA_FREE_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_data_free_checks(check):
    check("FrozenViewClassifier", FrozenViewClassifier(n_steps=5))


def test_sklearn_checks_param_validation_of_the_head():
    check_param_validation("MCDropoutHead", MCDropoutHead())


def test_fit_returns_self_is_idempotent_and_pickles(data, encoder):
    import pickle

    X, y = data
    clf = FrozenViewClassifier(encoder, n_steps=20, random_state=0)
    assert clf.fit(X[:20], y[:20]) is clf
    first = clf.predict_proba(X)
    np.testing.assert_allclose(clf.fit(X[:20], y[:20]).predict_proba(X), first, rtol=1e-6)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(
        restored.predict_proba_samples(X, 4), clf.predict_proba_samples(X, 4)
    )

"""MCDropoutCNN(sampler=...): imbalanced-learn samplers applied at every fit."""

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.under_sampling import NearMiss, RandomUnderSampler

from skal_cxr import MCDropoutCNN
from skal_cxr._resampling import resample_labeled, resolve_sampler


def _imbalanced(shape=(10, 12)):
    rng = np.random.default_rng(0)
    y = np.array([0] * 36 + [1] * 4)
    X = rng.random((40, *shape), dtype=np.float32)
    X[y == 1] += 0.5
    return X, y


@pytest.mark.parametrize("shape", [(10, 12), (1, 9, 7)])
def test_random_oversampling_indexes_the_original_images(shape):
    X, y = _imbalanced(shape)
    X_res, y_res, fitted = resample_labeled(RandomOverSampler(), X, y, random_state=0)
    assert np.bincount(y_res).tolist() == [36, 36]
    assert X_res.shape == (72, *shape)
    # every resampled image is one of the originals, with its own label
    np.testing.assert_array_equal(X_res, X[fitted.sample_indices_])
    np.testing.assert_array_equal(y_res, y[fitted.sample_indices_])


def test_undersampling_and_synthesis():
    X, y = _imbalanced()
    X_res, y_res, _ = resample_labeled(RandomUnderSampler(), X, y, random_state=0)
    assert np.bincount(y_res).tolist() == [4, 4] and X_res.shape == (8, 10, 12)
    X_res, y_res, _ = resample_labeled(SMOTE(k_neighbors=2), X, y, random_state=0)
    assert np.bincount(y_res).tolist() == [36, 36] and X_res.shape == (72, 10, 12)
    # synthetic minority images lie between minority images (pixelwise bounds)
    lo, hi = X[y == 1].min(axis=0), X[y == 1].max(axis=0)
    assert np.all((X_res[y_res == 1] >= lo - 1e-6) & (X_res[y_res == 1] <= hi + 1e-6))


def test_resolve_sampler_names_and_errors():
    assert isinstance(resolve_sampler("random_under"), RandomUnderSampler)
    assert type(resolve_sampler("NearMiss")) is NearMiss
    assert resolve_sampler(None) is None and resolve_sampler("none") is None
    user = RandomOverSampler(random_state=3)
    assert resolve_sampler(user) is not user  # cloned
    with pytest.raises(ValueError, match="unknown sampler 'smoth'"):
        resolve_sampler("smoth")
    with pytest.raises(ValueError, match="fit_resample"):
        resolve_sampler(object())


def test_estimator_resamples_every_fit_with_class_weight():
    X, y = _imbalanced()
    net = MCDropoutCNN(
        sampler=RandomOverSampler(),
        class_weight="balanced",
        max_epochs=1,
        min_train_steps=0,
        batch_size=16,
        random_state=0,
        module__width=4,
        module__n_blocks=1,
    )
    net.fit(X, y)
    assert np.bincount(net.sampler_.sample_indices_ >= 36).tolist() == [36, 36]
    # class weights come from the labeled set before resampling
    np.testing.assert_allclose(net.class_weight_, [40 / (2 * 36), 40 / (2 * 4)])
    assert net.n_epochs_ == 1 and len(net.history) == 1
    # the user's sampler is left untouched; refits give the same result
    assert not hasattr(net.sampler, "sample_indices_")
    first = net.sampler_.sample_indices_.copy()
    net.fit(X, y)
    np.testing.assert_array_equal(net.sampler_.sample_indices_, first)
    with pytest.raises(ValueError, match="unknown sampler"):
        MCDropoutCNN(sampler="nope", max_epochs=1).fit(X, y)


def test_training_steps_follow_the_resampled_set():
    X, y = _imbalanced()
    net = MCDropoutCNN(
        sampler="random_under",
        max_epochs=1,
        min_train_steps=4,
        batch_size=4,
        random_state=0,
        module__width=4,
        module__n_blocks=1,
    ).fit(X, y)
    # 8 images after undersampling: 2 batches per epoch, 4 steps -> 2 epochs
    assert net.n_epochs_ == 2 and len(net.history) == 2

"""Encoders fitted once per pool (on disk) and features computed once per image (in memory)."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.frozen import FrozenEstimator

from skal_cxr.embeddings import (
    ContrastiveEncoder,
    MemoizedView,
    PixelPCA,
    cached_fit,
    memoized_transform,
    remember_features,
)


class CountingEncoder(TransformerMixin, BaseEstimator):
    """Sums of the pixels; counts the fits and the images transformed (``seen[id]``)."""

    fits = 0
    seen = {}

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y=None):
        type(self).fits += 1
        self.fitted_ = object()
        self.seen[id(self)] = 0
        return self

    @property
    def n_seen(self):
        return self.seen[id(self)]

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        self.seen[id(self)] = self.seen.get(id(self), 0) + len(X)
        return self.scale * X.reshape(len(X), -1).sum(axis=1, keepdims=True)


@pytest.fixture
def pool():
    return np.random.default_rng(0).integers(0, 256, (30, 1, 6, 6), dtype=np.uint8)


def test_memoized_transform_computes_each_image_once(pool):
    enc = CountingEncoder().fit(pool)
    first = memoized_transform(enc, pool[:20])
    np.testing.assert_array_equal(first, enc.transform(pool[:20]))
    enc.seen[id(enc)] = 0
    again = memoized_transform(enc, pool[10:30])  # 10 seen, 10 new
    assert enc.n_seen == 10
    np.testing.assert_array_equal(again, CountingEncoder().fit(pool).transform(pool[10:30]))
    assert again.dtype == np.float32


def test_memoized_transform_forgets_a_refitted_encoder(pool):
    enc = CountingEncoder().fit(pool)
    memoized_transform(enc, pool)
    enc.fit(pool)  # new fitted attributes: the memory is stale
    memoized_transform(enc, pool)
    assert enc.n_seen == len(pool)


def test_memory_is_per_encoder_and_through_frozen_estimator(pool):
    a, b = CountingEncoder(1.0).fit(pool), CountingEncoder(2.0).fit(pool)
    np.testing.assert_array_equal(memoized_transform(b, pool), 2 * memoized_transform(a, pool))
    frozen = FrozenEstimator(a)
    memoized_transform(frozen, pool)
    a.seen[id(a)] = 0
    memoized_transform(frozen, pool)
    assert a.n_seen == 0


def test_same_bytes_of_another_dtype_are_another_image():
    enc = CountingEncoder().fit(None)
    x8 = np.zeros((1, 1, 2, 2), dtype=np.uint8)
    x8[..., 0, 0] = 1
    memoized_transform(enc, x8)
    as_int8 = x8.view(np.int8)
    assert memoized_transform(enc, as_int8).tolist() == [[1.0]]
    assert enc.n_seen == 2


def test_memoized_view_fits_a_clone_once(pool):
    unfitted = CountingEncoder()
    view = MemoizedView(unfitted).fit(pool)
    assert not hasattr(unfitted, "fitted_") and view.encoder_.fitted_
    fitted = CountingEncoder().fit(pool)
    assert MemoizedView(fitted).fit(None).encoder_ is fitted


def test_cached_fit_trains_once_per_pool_and_parameters(tmp_path, pool):
    CountingEncoder.fits = 0
    enc = CountingEncoder(3.0)
    first = cached_fit(enc, pool, tmp_path)
    again = cached_fit(enc, pool, tmp_path)
    assert CountingEncoder.fits == 1 and not hasattr(enc, "fitted_")
    np.testing.assert_array_equal(first.transform(pool), again.transform(pool))
    cached_fit(CountingEncoder(4.0), pool, tmp_path)  # other parameters
    cached_fit(enc, pool[1:], tmp_path)  # another pool
    assert CountingEncoder.fits == 3
    assert len(list(tmp_path.glob("encoder-*.pkl"))) == 3
    (next(tmp_path.glob("encoder-*.pkl"))).write_bytes(b"cut")  # damaged: fitted again
    for args in [(enc, pool), (CountingEncoder(4.0), pool), (enc, pool[1:])]:
        cached_fit(*args, tmp_path)
    assert CountingEncoder.fits == 4


def test_cached_fit_of_a_contrastive_encoder(tmp_path, pool):
    enc = ContrastiveEncoder(width=4, n_blocks=1, max_epochs=1, batch_size=8, random_state=0)
    first = cached_fit(enc, pool, tmp_path)
    loaded = cached_fit(enc, pool, tmp_path)
    assert loaded is not first
    np.testing.assert_array_equal(loaded.transform(pool), first.transform(pool))


def test_contrastive_encoder_contract_and_progress_bar(pool, capsys):
    enc = ContrastiveEncoder(width=4, n_blocks=2, max_epochs=2, batch_size=10, verbose=1)
    features = enc.set_params(random_state=0).fit(pool).transform(pool)
    assert features.shape == (30, 8) and features.dtype == np.float32
    err = capsys.readouterr().err
    assert "ContrastiveEncoder" in err and "6/6" in err  # 2 epochs of 3 batches
    ContrastiveEncoder(width=4, n_blocks=1, max_epochs=1, random_state=0).fit(pool)
    assert "ContrastiveEncoder" not in capsys.readouterr().err  # quiet by default
    module = enc.feature_module()
    import torch

    with torch.no_grad():
        by_module = module(torch.from_numpy(pool.astype(np.float32) / 255)).numpy()
    np.testing.assert_allclose(by_module, features, rtol=1e-5, atol=1e-6)


def test_pixel_pca_keeps_the_contract(pool):
    out = PixelPCA(n_components=4, random_state=0).fit(pool).transform(pool)
    assert out.shape == (30, 4)


def test_remembered_features_are_not_computed_again(pool):
    enc = CountingEncoder().fit(pool)
    stored = CountingEncoder().fit(pool).transform(pool[:20])  # computed elsewhere, earlier
    remember_features(enc, pool[:20], stored)
    out = memoized_transform(enc, pool[10:30])  # 10 remembered, 10 new
    assert enc.n_seen == 10
    np.testing.assert_array_equal(out, CountingEncoder().fit(pool).transform(pool[10:30]))
    with pytest.raises(ValueError, match="20 images but 19"):
        remember_features(enc, pool[:20], stored[:19])

"""Known answers of the label-free views of a pool (skal_cxr.embeddings)."""

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skal_cxr import MCDropoutCNN
from skal_cxr.embeddings import (
    ContrastiveEncoder,
    NetworkEmbedding,
    PixelPCA,
    cached_embedding,
    is_fitted,
    nt_xent_loss,
    pool_fingerprint,
)


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.random((24, 8, 8), dtype=np.float32)


def test_pixel_pca_is_pca_of_the_flattened_pixels(images):
    ours = PixelPCA(n_components=3, random_state=0).fit(images)
    ref = PCA(n_components=3, random_state=0).fit(images.reshape(24, -1))
    np.testing.assert_allclose(ours.transform(images[:, None]), ref.transform(
        images.reshape(24, -1)), rtol=1e-5, atol=1e-5)
    # uint8 images are scaled to [0, 1] first, so the view does not depend on storage
    as_uint8 = np.round(images * 255).astype(np.uint8)
    np.testing.assert_allclose(PixelPCA(3, random_state=0).fit_transform(as_uint8),
                               PixelPCA(3, random_state=0).fit_transform(as_uint8 / 255.0),
                               atol=1e-4)


def test_pixel_pca_one_direction_known_answer():
    # images a * pattern: all the variance lies along the unit-norm pattern
    pattern = np.zeros((4, 4))
    pattern[0, :2] = 1.0
    a = np.array([0.0, 1.0, 2.0, 3.0])
    X = a[:, None, None] * pattern
    pca = PixelPCA(n_components=2, random_state=0).fit(X)
    np.testing.assert_allclose(np.abs(pca.transform(X)[:, 0]),
                               np.abs((a - a.mean()) * math.sqrt(2)), atol=1e-6)
    assert pca.pca_.explained_variance_ratio_[0] == pytest.approx(1.0)


def test_pixel_pca_errors(images):
    with pytest.raises(NotFittedError):
        PixelPCA().transform(images)
    pca = PixelPCA(n_components=100).fit(images)  # capped at min(n_images, pixels)
    assert pca.pca_.n_components_ == 24
    with pytest.raises(ValueError, match="fitted on 64"):
        pca.transform(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="n_components"):
        PixelPCA(n_components=0).fit(images)


def test_nt_xent_known_answer():
    # two images, orthogonal; each view equals its partner: anchor similarities are
    # partner 1, the two views of the other image 0 -> loss = log((e + 2) / e)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert nt_xent_loss(z, z, temperature=1.0).item() == pytest.approx(math.log(1 + 2 / math.e))
    # temperature divides the similarities
    assert nt_xent_loss(z, 3 * z, temperature=0.5).item() == pytest.approx(
        math.log(1 + 2 / math.e ** 2))


def test_contrastive_encoder_is_seeded_and_learns(images):
    kwargs = dict(width=4, n_blocks=2, projection_dim=8, max_epochs=3, batch_size=12)
    enc = ContrastiveEncoder(**kwargs, random_state=0).fit(images)
    again = ContrastiveEncoder(**kwargs, random_state=0).fit(images)
    features = enc.transform(images)
    assert features.shape == (24, 8) and enc.n_features_out_ == 8
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(features, again.transform(images))
    assert enc.loss_curve_ == again.loss_curve_ and len(enc.loss_curve_) == 3
    other = ContrastiveEncoder(**kwargs, random_state=1).fit(images)
    assert not np.allclose(features, other.transform(images))
    # the trunk has CXRNet's layout, so a classifier can load it
    assert list(enc.trunk_[1].state_dict())[0] == "0.0.weight"


def test_contrastive_encoder_composes_in_a_pipeline(images):
    pipe = make_pipeline(ContrastiveEncoder(width=4, n_blocks=1, max_epochs=1,
                                            random_state=0), StandardScaler())
    assert pipe.fit_transform(images).shape == (24, 4)
    assert not is_fitted(clone(pipe[0])) and is_fitted(pipe[0])
    with pytest.raises(ValueError, match="at least 2"):
        ContrastiveEncoder().fit(images[:1])


def test_network_embedding_is_the_estimators_embed(images):
    y = np.tile([0, 1], 12)
    net = MCDropoutCNN(max_epochs=1, random_state=0, module__width=4).fit(images, y)
    np.testing.assert_array_equal(NetworkEmbedding(net).fit().transform(images),
                                  net.embed(images))
    with pytest.raises(NotFittedError):
        NetworkEmbedding(MCDropoutCNN()).fit()
    with pytest.raises(TypeError, match="embed"):
        NetworkEmbedding(PCA()).fit()


class CountingPCA(PixelPCA):
    fits = 0

    def fit(self, X, y=None):
        CountingPCA.fits += 1
        return super().fit(X, y)


def test_cached_embedding_computes_once_per_pool(images, tmp_path):
    CountingPCA.fits = 0
    first = cached_embedding(CountingPCA(n_components=2, random_state=0), images, tmp_path)
    second = cached_embedding(CountingPCA(n_components=2, random_state=0), images, tmp_path)
    assert CountingPCA.fits == 1 and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    cached_embedding(CountingPCA(n_components=3, random_state=0), images, tmp_path)
    changed = images.copy()
    changed[0, 0, 0] += 0.5
    cached_embedding(CountingPCA(n_components=2, random_state=0), changed, tmp_path)
    assert CountingPCA.fits == 3
    assert len(list(tmp_path.glob("embedding-*.npy"))) == 3
    # a fitted transformer is used as it is, keyed by its fitted state
    fitted = PixelPCA(n_components=2, random_state=0).fit(images[:12])
    out = cached_embedding(fitted, images, tmp_path)
    np.testing.assert_allclose(out, fitted.transform(images), rtol=1e-6)
    assert pool_fingerprint(images) != pool_fingerprint(changed)
    assert pool_fingerprint(images) == pool_fingerprint(images.copy())

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
    np.testing.assert_allclose(
        ours.transform(images[:, None]), ref.transform(images.reshape(24, -1)), rtol=1e-5, atol=1e-5
    )
    # uint8 images are scaled to [0, 1] first, so the view does not depend on storage
    as_uint8 = np.round(images * 255).astype(np.uint8)
    np.testing.assert_allclose(
        PixelPCA(3, random_state=0).fit_transform(as_uint8),
        PixelPCA(3, random_state=0).fit_transform(as_uint8 / 255.0),
        atol=1e-4,
    )


def test_pixel_pca_one_direction_known_answer():
    # images a * pattern: all the variance lies along the unit-norm pattern
    pattern = np.zeros((4, 4))
    pattern[0, :2] = 1.0
    a = np.array([0.0, 1.0, 2.0, 3.0])
    X = a[:, None, None] * pattern
    pca = PixelPCA(n_components=2, random_state=0).fit(X)
    np.testing.assert_allclose(
        np.abs(pca.transform(X)[:, 0]), np.abs((a - a.mean()) * math.sqrt(2)), atol=1e-6
    )
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
        math.log(1 + 2 / math.e**2)
    )


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
    pipe = make_pipeline(
        ContrastiveEncoder(width=4, n_blocks=1, max_epochs=1, random_state=0), StandardScaler()
    )
    assert pipe.fit_transform(images).shape == (24, 4)
    assert not is_fitted(clone(pipe[0])) and is_fitted(pipe[0])
    with pytest.raises(ValueError, match="at least 2"):
        ContrastiveEncoder().fit(images[:1])


def test_network_embedding_is_the_estimators_embed(images):
    y = np.tile([0, 1], 12)
    net = MCDropoutCNN(max_epochs=1, random_state=0, module__width=4).fit(images, y)
    np.testing.assert_array_equal(NetworkEmbedding(net).fit().transform(images), net.embed(images))
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


@pytest.mark.parametrize("damage", ["meta", "array"])
def test_a_damaged_cached_embedding_is_computed_again(images, tmp_path, damage):
    CountingPCA.fits = 0
    first = cached_embedding(CountingPCA(n_components=2, random_state=0), images, tmp_path)
    [array] = tmp_path.glob("embedding-*.npy")
    target = array.with_suffix(".json") if damage == "meta" else array
    target.write_bytes(target.read_bytes()[:20])  # cut short, as by a crash mid-write
    again = cached_embedding(CountingPCA(n_components=2, random_state=0), images, tmp_path)
    np.testing.assert_array_equal(again, first)
    assert CountingPCA.fits == 2
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([array.name, array.stem + ".json"])


def test_classifier_starts_from_the_contrastive_trunk(images, tmp_path):
    import torch

    from skal_cxr.networks import CXRNet

    enc = ContrastiveEncoder(width=4, n_blocks=2, max_epochs=1, random_state=0).fit(images)
    state = enc.trunk_state_dict()
    kwargs = dict(module__width=4, module__n_blocks=2, max_epochs=0, min_train_steps=0)
    net = MCDropoutCNN(**kwargs, random_state=1, encoder_weights=state)
    net.fit(images, np.tile([0, 1], 12))
    # no training step: the trunk's parameters are the encoder's (BatchNorm running
    # statistics are recalibrated on the training images after fit)
    trunk = dict(net.module_.mc_split()[0].named_parameters())
    assert set(trunk) == {
        k for k in state if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    for key, value in trunk.items():
        torch.testing.assert_close(value.detach(), state[key])
    plain = MCDropoutCNN(**kwargs, random_state=1).fit(images, np.tile([0, 1], 12))
    assert not torch.allclose(
        dict(plain.module_.named_parameters())["features.0.0.weight"], state["1.0.0.weight"]
    )
    # clone keeps the weights; a file works too; another width is a clear error
    from sklearn.base import clone

    assert clone(net).encoder_weights is not None
    torch.save(state, tmp_path / "trunk.pt")
    from_file = MCDropoutCNN(**kwargs, encoder_weights=tmp_path / "trunk.pt")
    from_file.fit(images, np.tile([0, 1], 12))
    torch.testing.assert_close(
        dict(from_file.module_.named_parameters())["features.0.0.weight"].detach(),
        state["1.0.0.weight"],
    )
    with pytest.raises(ValueError, match="width and n_blocks"):
        MCDropoutCNN(**{**kwargs, "module__width": 8}, encoder_weights=state).fit(
            images, np.tile([0, 1], 12)
        )
    assert isinstance(net.module_, CXRNet)

"""Frozen backbones: weights loaded from a checked file, features of the right shape.

No weights can be downloaded here: each test saves a backbone of the same
architecture with random weights and loads it back.
"""

import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from skal_cxr.embeddings import (
    ChecksumError,
    PretrainedEncoder,
    XRVEncoder,
    download_weights,
    file_sha256,
    weights_url,
)
from skal_cxr.embeddings._pretrained import _backbone

IMAGES = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)


def _saved(tmp_path, architecture, seed=1, **extra):
    torch.manual_seed(seed)
    import torchvision.models as tvm

    full = getattr(tvm, architecture)(weights=None)  # with its ImageNet classifier
    path = tmp_path / f"{architecture}.pth"
    torch.save({**full.state_dict(), **extra}, path)
    return path, full


@pytest.mark.parametrize("architecture, n_features", [("resnet18", 512), ("densenet121", 1024)])
def test_round_trip_load(tmp_path, architecture, n_features):
    path, full = _saved(tmp_path, architecture)
    enc = PretrainedEncoder(architecture, weights=path, sha256=file_sha256(path), image_size=32)
    enc.fit()
    loaded = enc.model_.state_dict()
    for key, value in full.state_dict().items():
        if not key.startswith(("fc.", "classifier.")):
            assert torch.equal(loaded[key], value), key
    features = enc.transform(IMAGES)
    assert features.shape == (3, n_features) and features.dtype == np.float32
    assert enc.n_features_out_ == n_features


def test_resnet50_features_shape():
    enc = PretrainedEncoder("resnet50", image_size=32, random_state=0).fit()
    assert enc.transform(IMAGES[:2]).shape == (2, 2048)


def test_features_follow_the_documented_preprocessing(tmp_path):
    path, _ = _saved(tmp_path, "resnet18")
    enc = PretrainedEncoder(weights=path, sha256=file_sha256(path), image_size=40).fit()
    # by hand: resize to 40x40, three channels, ImageNet normalisation, backbone
    x = torch.from_numpy(IMAGES.astype(np.float32) / 255)
    x = torch.nn.functional.interpolate(x, size=(40, 40), mode="bilinear", antialias=True)
    x = x.expand(-1, 3, -1, -1)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        expected = enc.model_((x - mean) / std).numpy()
    np.testing.assert_allclose(enc.transform(IMAGES), expected, rtol=1e-4, atol=1e-5)


def test_wrong_checksum_is_refused(tmp_path):
    path, _ = _saved(tmp_path, "resnet18")
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match="not the expected 0000") as info:
        PretrainedEncoder(weights=path, sha256=wrong).fit()
    assert file_sha256(path) in str(info.value)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        PretrainedEncoder(weights=path).fit()  # no checksum given
    with pytest.raises(FileNotFoundError):
        PretrainedEncoder(weights=tmp_path / "none.pth", sha256=wrong).fit()


def test_weights_of_another_architecture_are_refused(tmp_path):
    path, _ = _saved(tmp_path, "resnet18")
    with pytest.raises(ValueError, match="does not fit torchvision's densenet121"):
        PretrainedEncoder("densenet121", weights=path, sha256=file_sha256(path)).fit()


def test_old_densenet_key_names_are_renamed(tmp_path):
    torch.manual_seed(0)
    model = _backbone("densenet121")
    old = {}
    # torchvision's old files: norm.1, conv.2, and no num_batches_tracked (older than it)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        for part in ("norm1", "norm2", "conv1", "conv2", "relu1", "relu2"):
            key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
        old[key] = value
    path = tmp_path / "old.pth"
    torch.save(old, path)
    enc = PretrainedEncoder("densenet121", weights=path, sha256=file_sha256(path)).fit()
    assert torch.equal(
        enc.model_.features.denseblock1.denselayer1.norm1.weight,
        model.features.denseblock1.denselayer1.norm1.weight,
    )


def test_download_weights_checks_the_file(tmp_path, monkeypatch):
    payload = b"weights"

    def fake_download(url, dst, progress=True):
        with open(dst, "wb") as fh:
            fh.write(payload)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    import hashlib

    good = hashlib.sha256(payload).hexdigest()
    path = download_weights("https://example.org/w/resnet18-x.pth", good, tmp_path / "w")
    assert path.name == "resnet18-x.pth" and path.read_bytes() == payload
    with pytest.raises(ChecksumError):
        download_weights("https://example.org/w/other.pth", "1" * 64, tmp_path / "w")
    assert not (tmp_path / "w" / "other.pth").exists()  # a refused file is removed
    assert weights_url("resnet18").endswith("resnet18-f37072fd.pth")


class _FakeXRVDenseNet(nn.Module):
    """torchxrayvision's DenseNet as far as XRVEncoder uses it."""

    seen = []

    def __init__(self, weights=None):
        super().__init__()
        self.weights = weights
        self.conv = nn.Conv2d(1, 6, 3)

    def features2(self, x):
        _FakeXRVDenseNet.seen.append((x.shape, float(x.min()), float(x.max())))
        return self.conv(x).mean(dim=(2, 3))


def test_xrv_encoder_with_a_fake_torchxrayvision(monkeypatch):
    fake = types.ModuleType("torchxrayvision")
    fake.models = types.SimpleNamespace(DenseNet=_FakeXRVDenseNet)
    monkeypatch.setitem(sys.modules, "torchxrayvision", fake)
    enc = XRVEncoder(image_size=32).fit()
    assert enc.model_.network.weights == "densenet121-res224-all"
    black_white = np.zeros((2, 28, 28), dtype=np.uint8)
    black_white[1] = 255
    _FakeXRVDenseNet.seen.clear()
    features = enc.transform(black_white)
    assert features.shape == (2, 6) and enc.n_features_out_ == 6
    shape, low, high = _FakeXRVDenseNet.seen[-1]
    assert tuple(shape) == (2, 1, 32, 32) and (low, high) == (-1024.0, 1024.0)


def test_xrv_encoder_without_torchxrayvision(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchxrayvision", None)  # import fails
    with pytest.raises(ImportError, match=r"skal-cxr\[xrv\]"):
        XRVEncoder().fit()

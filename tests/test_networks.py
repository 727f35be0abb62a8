import numpy as np
import pytest
import torch
from torchvision.models import ResNet18_Weights, resnet18

from skal_cxr import MCDropoutCNN
from skal_cxr.networks import CXRNet


@pytest.mark.parametrize("size", [8, 28, 64, 57])
def test_small_backbone_any_size(size):
    net = CXRNet(n_classes=3).eval()
    assert net(torch.zeros(2, 1, size, size)).shape == (2, 3)


@pytest.mark.parametrize("backbone", ["resnet18", "densenet121"])
def test_torchvision_backbones_single_channel(backbone):
    net = CXRNet(n_classes=3, backbone=backbone, dropout=0.2).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = net(x)
        features, head = net.mc_split()
        np.testing.assert_allclose(head(features(x)), out, rtol=1e-5)
    assert out.shape == (2, 3)
    assert isinstance(head[0], torch.nn.Dropout) and head[0].p == 0.2


def test_pretrained_weights_from_local_file_sum_rgb_filters(tmp_path):
    reference = resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = CXRNet(backbone="resnet18", pretrained=path)
    expected = reference.conv1.weight.sum(dim=1, keepdim=True)
    assert torch.allclose(net.features[0].weight, expected)
    assert torch.equal(net.features[4][0].conv1.weight, reference.layer1[0].conv1.weight)


def test_pretrained_true_reads_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    reference = resnet18(weights=None)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / ResNet18_Weights.DEFAULT.url.split("/")[-1])
    net = CXRNet(backbone="resnet18", pretrained=True)
    assert torch.equal(net.features[4][0].conv1.weight, reference.layer1[0].conv1.weight)


def test_per_image_standardization():
    net = CXRNet(n_classes=2).eval()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        # brightness and contrast of the input no longer matter
        torch.testing.assert_close(net(x), net(3.0 * x + 0.5), rtol=1e-4, atol=1e-4)
        z = net.input_norm(x)
    torch.testing.assert_close(z.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        z.std(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0
    )
    assert torch.equal(net.input_norm(torch.full((1, 1, 4, 4), 0.7)), torch.zeros(1, 1, 4, 4))
    assert isinstance(CXRNet(standardize=False).input_norm, torch.nn.Identity)


def test_bad_network_arguments():
    with pytest.raises(ValueError, match="backbone must be one of"):
        CXRNet(backbone="vgg")
    with pytest.raises(ValueError, match="dropout must be in"):
        CXRNet(dropout=1.0)
    with pytest.raises(ValueError, match="no pretrained weights"):
        CXRNet(pretrained=True)


def test_backbone_through_estimator(toy_images):
    X, y = toy_images
    X = np.kron(X, np.ones((1, 2, 2), dtype=np.float32))  # 32x32
    net = MCDropoutCNN(
        module__backbone="resnet18", max_epochs=1, min_train_steps=0, random_state=0
    ).fit(X, y)
    assert net.predict_proba_samples(X[:3], n_mc_samples=4).shape == (4, 3, 3)
    assert net.embed(X[:3]).shape == (3, 512)

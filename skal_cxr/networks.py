"""Convolutional networks for single-channel chest X-rays, ready for MC Dropout.

Every network here is ``head(features(input_norm(x)))`` where everything
before ``head`` is deterministic and ``head`` starts with the dropout layer. Monte Carlo sampling
therefore runs ``features`` once per image and samples only the head (see
:meth:`CXRNet.mc_split`).
"""

import os
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "CXRNet",
    "PerImageStandardize",
    "BACKBONES",
    "cached_imagenet_weights",
    "load_trunk_weights",
]

BACKBONES = ("small", "resnet18", "densenet121")


class PerImageStandardize(nn.Module):
    """Scale each image to zero mean and unit standard deviation.

    X-ray exposure and windowing vary between machines and exports; removing
    each image's own brightness and contrast lets a network trained on a few
    dozen images attend to anatomy instead. A constant image becomes 0.

    Parameters
    ----------
    eps : float, default=1e-6
        Images whose standard deviation is at most ``eps`` count as
        constant.
    """

    def __init__(self, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        dims = tuple(range(1, x.ndim))
        mean = x.mean(dim=dims, keepdim=True)
        std = x.std(dim=dims, keepdim=True, unbiased=False)
        # a (numerically) constant image has no contrast to scale: it maps to 0
        return (x - mean) / torch.where(std > self.eps, std, torch.inf)


def _conv_block(c_in, c_out):
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, ceil_mode=True),
    )


def _load_pretrained_state(weights, pretrained):
    """State dict from a local file path, or torchvision's cached/downloaded weights."""
    if isinstance(pretrained, (str, os.PathLike)):
        return torch.load(pretrained, map_location="cpu", weights_only=True)
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # network errors come in many types
        raise RuntimeError(
            f"Could not load the pretrained weights {weights}: they are neither in the "
            f"torch hub cache ({torch.hub.get_dir()}) nor downloadable here ({exc}). "
            "Copy the file into that cache, pass its path as `pretrained`, or use "
            "pretrained=False."
        ) from exc


def cached_imagenet_weights(backbone):
    """Where torchvision keeps the ImageNet weights of ``backbone`` in the local cache.

    Parameters
    ----------
    backbone : {"resnet18", "densenet121"}

    Returns
    -------
    path : pathlib.Path
        ``<torch hub dir>/checkpoints/<file>``; the file may be absent.
    """
    from torchvision.models import DenseNet121_Weights, ResNet18_Weights

    weights = {"resnet18": ResNet18_Weights, "densenet121": DenseNet121_Weights}
    if backbone not in weights:
        raise ValueError(f"backbone must be one of {sorted(weights)}; got {backbone!r}.")
    url = weights[backbone].DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _single_channel_conv(conv, in_channels):
    """A copy of ``conv`` taking ``in_channels`` inputs; RGB filters are summed."""
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    with torch.no_grad():
        summed = conv.weight.sum(dim=1, keepdim=True)
        new.weight.copy_(summed.repeat(1, in_channels, 1, 1) / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _resnet18_features(in_channels, pretrained):
    from torchvision.models import ResNet18_Weights, resnet18

    net = resnet18(weights=None)
    if pretrained:
        net.load_state_dict(_load_pretrained_state(ResNet18_Weights.DEFAULT, pretrained))
    net.conv1 = _single_channel_conv(net.conv1, in_channels)
    features = nn.Sequential(*list(net.children())[:-1], nn.Flatten())
    return features, net.fc.in_features


def _densenet121_features(in_channels, pretrained):
    from torchvision.models import DenseNet121_Weights, densenet121

    net = densenet121(weights=None)
    if pretrained:
        state = _load_pretrained_state(DenseNet121_Weights.DEFAULT, pretrained)
        # Old checkpoints name layers 'norm.1'; torchvision remaps them the same way.
        state = {
            k.replace("norm.1", "norm1")
            .replace("conv.1", "conv1")
            .replace("norm.2", "norm2")
            .replace("conv.2", "conv2"): v
            for k, v in state.items()
        }
        net.load_state_dict(state)
    net.features.conv0 = _single_channel_conv(net.features.conv0, in_channels)
    features = nn.Sequential(
        net.features, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    return features, net.classifier.in_features


class CXRNet(nn.Module):
    """A CNN for single-channel images of any size with a dropout head.

    Parameters
    ----------
    n_classes : int, default=2
        Number of output classes. :class:`skal_cxr.MCDropoutCNN` fills it in
        from the training labels.
    in_channels : int, default=1
        Number of input channels.
    backbone : {"small", "resnet18", "densenet121"}, default="small"
        ``"small"``: ``n_blocks`` blocks of 3x3 convolution, BatchNorm, ReLU
        and 2x2 max pooling, then global average pooling; fast on a CPU and
        works from 8x8 pixels up. ``"resnet18"`` and ``"densenet121"``: the
        torchvision networks with their first convolution adapted to
        ``in_channels`` (ResNet-18 needs at least 32x32 pixels, DenseNet-121
        at least 32x32).
    width : int, default=32
        Channels of the first block of the small backbone; doubled per block.
    n_blocks : int, default=3
        Number of convolution blocks of the small backbone.
    dropout : float, default=0.5
        Dropout probability of the head, the layer sampled by MC Dropout.
    standardize : bool, default=True
        Standardise each input image (:class:`PerImageStandardize`) before
        the backbone. Small labeled sets train far more reliably with it.
    pretrained : bool or path-like, default=False
        For the torchvision backbones, load ImageNet weights: ``True`` takes
        them from the torch hub cache (downloading them when a network is
        available), a path loads a local state-dict file. RGB filters of
        the first convolution are summed to read grayscale input.
    """

    def __init__(
        self,
        n_classes=2,
        in_channels=1,
        backbone="small",
        width=32,
        n_blocks=3,
        dropout=0.5,
        standardize=True,
        pretrained=False,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}; got {backbone!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}.")
        if backbone == "small":
            if pretrained:
                raise ValueError("The small backbone has no pretrained weights.")
            channels = [in_channels] + [width * 2**i for i in range(n_blocks)]
            blocks = [_conv_block(a, b) for a, b in zip(channels[:-1], channels[1:])]
            self.features = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten())
            n_features = channels[-1]
        elif backbone == "resnet18":
            self.features, n_features = _resnet18_features(in_channels, pretrained)
        else:
            self.features, n_features = _densenet121_features(in_channels, pretrained)
        self.input_norm = PerImageStandardize() if standardize else nn.Identity()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, n_classes))

    def forward(self, x):
        return self.head(self.features(self.input_norm(x)))

    def mc_split(self):
        """Return ``(trunk, head)``: the deterministic part and the sampled head.

        The trunk is input standardisation followed by ``features``.

        Returns
        -------
        trunk : torch.nn.Module
            The deterministic layers before the first dropout layer.
        head : torch.nn.Module
            The layers from the first dropout layer on.
        """
        return nn.Sequential(self.input_norm, self.features), self.head


def load_trunk_weights(module, weights):
    """Load a trunk's weights (standardisation and ``features``) into ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        A network with an ``mc_split()`` method (such as :class:`CXRNet`).
    weights : dict or path-like
        A state dict of the trunk ``nn.Sequential(input_norm, features)``
        (``ContrastiveEncoder.trunk_state_dict()``), or a file holding one.

    Returns
    -------
    module : torch.nn.Module
        ``module``, its trunk loaded in place.

    Raises
    ------
    ValueError
        If the weights do not fit the trunk (another width or depth).
    """
    if isinstance(weights, (str, os.PathLike)):
        weights = torch.load(weights, map_location="cpu", weights_only=True)
    if not hasattr(module, "mc_split"):
        raise TypeError(f"{type(module).__name__} has no mc_split(): no trunk to load into.")
    trunk = module.mc_split()[0]
    try:
        trunk.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(
            "encoder_weights do not fit the network's trunk (train the encoder with the "
            f"network's width and n_blocks): {first}"
        ) from None
    return module

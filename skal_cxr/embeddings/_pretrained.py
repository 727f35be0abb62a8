"""Frozen ImageNet or chest X-ray backbones as views of the pool.

:class:`PretrainedEncoder` runs a torchvision ResNet-18, ResNet-50 or
DenseNet-121 whose weights the user has on disk (checked against the
SHA-256 they give); :class:`XRVEncoder` runs a chest X-ray DenseNet of
torchxrayvision (the optional ``xrv`` extra), imported only when used. Both
map grayscale images ``(n_images, 1, H, W)`` to the backbone's pooled
features ``(n_images, n_features)``, resizing and normalising them as the
backbone expects. Nothing is trained: ``fit`` loads the weights.
"""

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torchvision.transforms import v2

from .._device import resolve_device
from .._random import torch_rng
from .._validation import Integers, StrOptions, check_images, check_params

__all__ = [
    "PretrainedEncoder",
    "XRVEncoder",
    "ChecksumError",
    "file_sha256",
    "download_weights",
    "weights_url",
]

#: torchvision architectures and the size of their pooled features.
ARCHITECTURES = {"resnet18": 512, "resnet50": 2048, "densenet121": 1024}
_WEIGHTS_ENUMS = {
    "resnet18": "ResNet18_Weights",
    "resnet50": "ResNet50_Weights",
    "densenet121": "DenseNet121_Weights",
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ChecksumError(ValueError):
    """A weights file whose SHA-256 is not the expected one."""


def file_sha256(path):
    """The SHA-256 hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    digest : str
        64 lowercase hexadecimal characters (what ``sha256sum`` prints).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path, sha256):
    """``path`` as a Path once its SHA-256 equals ``sha256``; raises otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist.")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(
            "sha256 must be the 64 hexadecimal characters of the file's expected SHA-256 "
            f"(`sha256sum {path.name}` prints them); got {sha256!r}."
        )
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise ChecksumError(
            f"{path} has SHA-256 {actual}, not the expected {sha256.lower()}: the file is "
            "damaged, incomplete or another one. It was not loaded."
        )
    return path


def weights_url(architecture):
    """torchvision's download address of an architecture's ImageNet weights.

    Parameters
    ----------
    architecture : {"resnet18", "resnet50", "densenet121"}
        The backbone.

    Returns
    -------
    url : str
        The file's address (``IMAGENET1K_V1`` weights). Its name ends with
        the first hexadecimal digits of the file's SHA-256.
    """
    import torchvision.models as tvm

    if architecture not in _WEIGHTS_ENUMS:
        raise ValueError(
            f"architecture must be one of {sorted(ARCHITECTURES)}; got {architecture!r}."
        )
    return getattr(tvm, _WEIGHTS_ENUMS[architecture]).IMAGENET1K_V1.url


def download_weights(url, sha256, directory, *, progress=True):
    """Download a weights file once and check its SHA-256 (needs a network).

    Parameters
    ----------
    url : str
        The file's address, for example ``weights_url("resnet18")``.
    sha256 : str
        The file's expected SHA-256 (64 hexadecimal characters).
    directory : path-like
        Folder of the file (created if needed); a file already there with
        the right checksum is not downloaded again.
    progress : bool, default=True
        Show torch's download progress bar.

    Returns
    -------
    path : pathlib.Path
        The verified file, for ``PretrainedEncoder(weights=path, sha256=sha256)``.

    Raises
    ------
    ChecksumError
        If the downloaded file's SHA-256 differs (the file is then removed).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(url.split("?")[0]).name
    if path.is_file():
        try:
            return _verified(path, sha256)
        except ChecksumError:
            path.unlink()
    # torch writes to a temporary file and moves it into place when complete
    torch.hub.download_url_to_file(url, os.fspath(path), progress=progress)
    try:
        return _verified(path, sha256)
    except ChecksumError:
        path.unlink(missing_ok=True)
        raise


# torchvision's old DenseNet files name "norm.1" what the module calls "norm1"
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _backbone(architecture):
    """A torchvision backbone without its classifier (random weights)."""
    import torchvision.models as tvm

    model = getattr(tvm, architecture)(weights=None)
    if architecture.startswith("resnet"):
        model.fc = nn.Identity()
    else:
        model.classifier = nn.Identity()
    return model


def _load_state(model, path, architecture):
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if architecture == "densenet121":
        state = {
            (m.group(1) + m.group(2) if (m := _DENSENET_KEY.match(k)) else k): v
            for k, v in state.items()
        }
    # the classifier of an ImageNet file is not part of the feature extractor
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"the weights file does not fit torchvision's {architecture}: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
        )


class _ToRGB(nn.Module):
    """One grayscale channel repeated three times (``v2.RGB`` on batched tensors)."""

    def forward(self, x):
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class _Encoder(TransformerMixin, BaseEstimator):
    """Shared ``transform`` and ``feature_module`` of the frozen backbones."""

    def feature_module(self):
        """The torch module that :meth:`transform` applies, for fine-tuning.

        Returns
        -------
        module : torch.nn.Sequential
            Preprocessing then the backbone: maps a float tensor of images
            ``(n, 1, H, W)`` in ``[0, 1]`` to ``(n, n_features_out_)``. It
            holds the fitted weights themselves: copy it before training it.
        """
        check_is_fitted(self, "model_")
        return nn.Sequential(self.preprocess_, self.model_)

    def transform(self, X):
        """The backbone's pooled features of the images.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Grayscale images, ``uint8`` (scaled to ``[0, 1]``) or float in ``[0, 1]``.

        Returns
        -------
        features : ndarray of shape (n_images, ``n_features_out_``), dtype float32
            One row per image, in order.
        """
        check_is_fitted(self, "model_")
        X = check_images(X, allow_dataset=False)
        device = torch.device(resolve_device(self.device))
        module = self.feature_module().to(device).eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(X[start : start + self.batch_size]))
                out.append(module(batch.to(device)).flatten(1).float().cpu())
        module.to("cpu")
        return torch.cat(out).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


class PretrainedEncoder(_Encoder):
    """A frozen torchvision backbone loaded from a weights file the user has.

    ``fit`` builds the architecture, checks the file's SHA-256 against
    ``sha256`` (refusing a different file with :class:`ChecksumError`) and
    loads its weights; no image is used and nothing is trained.
    ``transform`` resizes the grayscale images to ``image_size``, repeats
    them to three channels, normalises them with ImageNet's mean and
    standard deviation (torchvision transforms) and returns the pooled
    features before the classifier.

    Parameters
    ----------
    architecture : {"resnet18", "resnet50", "densenet121"}, default="resnet18"
        The torchvision backbone (512, 2048 and 1024 features).
    weights : path-like or None, default=None
        A file holding the backbone's ``state_dict`` (:func:`torch.save`),
        such as torchvision's ImageNet file (see :func:`download_weights`);
        its classifier is dropped. ``None``: randomly initialised weights
        (seeded by ``random_state``), a baseline for tests only.
    sha256 : str or None, default=None
        The file's expected SHA-256 (``sha256sum`` prints it); required
        with ``weights``.
    image_size : int, default=224
        Side of the square images the backbone sees.
    batch_size : int, default=64
        Images per forward pass of ``transform``.
    device : str or torch.device, default="auto"
        Where ``transform`` runs; ``"auto"`` uses CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the random weights when ``weights=None``.

    Attributes
    ----------
    model_ : torch.nn.Module
        The backbone without its classifier, on the CPU, in eval mode.
    preprocess_ : torch.nn.Sequential
        Resize, three channels, ImageNet normalisation.
    n_features_out_ : int
        Features per image.

    See Also
    --------
    XRVEncoder : torchxrayvision's chest X-ray DenseNets.
    ContrastiveEncoder : A small encoder trained on the pool itself.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.embeddings import PretrainedEncoder
    >>> enc = PretrainedEncoder(image_size=32, random_state=0).fit(None)
    >>> enc.transform(np.zeros((2, 28, 28), dtype=np.uint8)).shape
    (2, 512)
    """

    _parameter_constraints = {
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "weights": [str, os.PathLike, None],
        "sha256": [str, None],
        "image_size": [Integers(8)],
        "batch_size": [Integers(1)],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        architecture="resnet18",
        weights=None,
        sha256=None,
        image_size=224,
        batch_size=64,
        device="auto",
        random_state=None,
    ):
        self.architecture = architecture
        self.weights = weights
        self.sha256 = sha256
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def fit(self, X=None, y=None):
        """Build the backbone and load the verified weights.

        Parameters
        ----------
        X : None or array-like
            Ignored (nothing is learned from the images).
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedEncoder
            Fitted.

        Raises
        ------
        ChecksumError
            If the weights file's SHA-256 differs from ``sha256``.
        """
        check_params(self)
        path = None if self.weights is None else _verified(self.weights, self.sha256)
        with torch_rng(self.random_state):
            model = _backbone(self.architecture)
        if path is not None:
            _load_state(model, path, self.architecture)
        self.model_ = model.eval().requires_grad_(False)
        self.preprocess_ = nn.Sequential(
            v2.Resize((self.image_size, self.image_size), antialias=True),
            _ToRGB(),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        )
        self.n_features_out_ = ARCHITECTURES[self.architecture]
        return self


class _XRVRange(nn.Module):
    """``[0, 1]`` images to torchxrayvision's ``[-1024, 1024]`` range."""

    def forward(self, x):
        return (2.0 * x - 1.0) * 1024.0


class XRVEncoder(_Encoder):
    """A chest X-ray DenseNet of torchxrayvision, frozen (the ``xrv`` extra).

    torchxrayvision (Cohen et al., 2022) ships DenseNet-121 models trained on
    several public chest X-ray collections. ``fit`` imports it (only then)
    and builds ``torchxrayvision.models.DenseNet(weights=weights)``, which
    reads the weights from torchxrayvision's cache folder (and downloads them
    there once, with a network). ``transform`` resizes the grayscale images
    to ``image_size``, maps ``[0, 1]`` to torchxrayvision's ``[-1024, 1024]``
    and returns the model's pooled features (``features2``, 1024 values).

    Parameters
    ----------
    weights : str, default="densenet121-res224-all"
        torchxrayvision's name of the weights.
    image_size : int, default=224
        Side of the square images (224 for the ``res224`` models).
    batch_size : int, default=64
        Images per forward pass of ``transform``.
    device : str or torch.device, default="auto"
        Where ``transform`` runs; ``"auto"`` uses CUDA when available.

    Attributes
    ----------
    model_ : torch.nn.Module
        The network, its ``forward`` giving the pooled features; eval mode.
    preprocess_ : torch.nn.Sequential
        Resize and intensity mapping.
    n_features_out_ : int
        Features per image.

    See Also
    --------
    PretrainedEncoder : torchvision backbones from a weights file.
    """

    _parameter_constraints = {
        "weights": [str],
        "image_size": [Integers(8)],
        "batch_size": [Integers(1)],
        "device": [str, torch.device],
    }

    def __init__(
        self, weights="densenet121-res224-all", image_size=224, batch_size=64, device="auto"
    ):
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device

    def fit(self, X=None, y=None):
        """Import torchxrayvision and load the named model.

        Parameters
        ----------
        X : None or array-like
            Ignored (nothing is learned from the images).
        y : None
            Ignored.

        Returns
        -------
        self : XRVEncoder
            Fitted.

        Raises
        ------
        ImportError
            If torchxrayvision is not installed (``pip install skal-cxr[xrv]``).
        """
        check_params(self)
        try:
            import torchxrayvision as xrv
        except ImportError as exc:
            raise ImportError(
                "XRVEncoder needs torchxrayvision: pip install 'skal-cxr[xrv]'."
            ) from exc
        network = xrv.models.DenseNet(weights=self.weights)
        self.model_ = _Features2(network).eval().requires_grad_(False)
        self.preprocess_ = nn.Sequential(
            v2.Resize((self.image_size, self.image_size), antialias=True), _XRVRange()
        )
        with torch.inference_mode():
            probe = torch.zeros(1, 1, self.image_size, self.image_size)
            self.n_features_out_ = int(self.model_(self.preprocess_(probe)).flatten(1).shape[1])
        return self


class _Features2(nn.Module):
    """A torchxrayvision network whose forward is its ``features2`` (pooled features)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network.features2(x)

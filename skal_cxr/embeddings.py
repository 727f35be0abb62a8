"""Views of an image pool without labels, for label-free and low-budget acquisition.

Three scikit-learn transformers map images of shape ``(n_images, H, W)`` or
``(n_images, 1, H, W)`` to feature vectors ``(n_images, n_features)``:

* :class:`PixelPCA`: principal components of the pixels (seconds on a CPU);
* :class:`ContrastiveEncoder`: a small CNN (the ``"small"`` backbone of
  :class:`~skal_cxr.networks.CXRNet`) trained on the unlabeled pool itself
  with SimCLR's contrastive objective (:func:`nt_xent_loss`), a few CPU
  minutes at 28-64 pixels;
* :class:`NetworkEmbedding`: the penultimate features of a fitted
  :class:`~skal_cxr.MCDropoutCNN` (its ``embed``).

:func:`cached_embedding` computes a view once per pool and keeps it on disk
(an ``.npy`` file named by a fingerprint of the pool and of the transformer).
"""

import hashlib
import numbers
import json
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F
from torchvision.transforms import v2

from ._random import torch_rng
from ._validation import Integers, Interval, check_images, check_int, check_params

__all__ = [
    "PixelPCA", "ContrastiveEncoder", "NetworkEmbedding", "nt_xent_loss",
    "contrastive_augmentation", "pool_fingerprint", "cached_embedding", "is_fitted",
]


_POSITIVE = Interval(numbers.Real, 0, None, closed="neither")


def is_fitted(transformer):
    """Whether a scikit-learn transformer is fitted (``check_is_fitted`` passes).

    Parameters
    ----------
    transformer : estimator
        Any scikit-learn estimator.

    Returns
    -------
    fitted : bool
        ``True`` when ``check_is_fitted(transformer)`` raises nothing.
    """
    try:
        check_is_fitted(transformer)
    except NotFittedError:
        return False
    return True


def _flat(X, name="X"):
    X = check_images(X, allow_dataset=False, name=name)
    return X.reshape(len(X), -1)


class PixelPCA(TransformerMixin, BaseEstimator):
    """Principal components of the pixels: a label-free view in seconds.

    Parameters
    ----------
    n_components : int, default=50
        Components kept (at most the number of images and of pixels).
    random_state : int, RandomState instance or None, default=None
        Seeds the randomized SVD of :class:`sklearn.decomposition.PCA`.

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
        Fitted on the flattened images (``uint8`` scaled to ``[0, 1]``).
    n_features_in_ : int
        Pixels per image.
    image_shape_ : tuple of int
        ``(1, H, W)`` of the images seen by ``fit``.

    See Also
    --------
    ContrastiveEncoder : A learned view of the same pool.

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr.embeddings import PixelPCA
    >>> X = np.random.default_rng(0).random((20, 8, 8))
    >>> PixelPCA(n_components=3, random_state=0).fit_transform(X).shape
    (20, 3)
    """

    _parameter_constraints = {"n_components": [Integers(1)], "random_state": ["random_state"]}

    def __init__(self, n_components=50, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the components on the images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            The pool.
        y : None
            Ignored (no labels are used).

        Returns
        -------
        self : PixelPCA
            Fitted.
        """
        check_params(self)
        flat = _flat(X)
        n_components = min(check_int(self.n_components, "n_components"), *flat.shape)
        self.image_shape_ = check_images(X, allow_dataset=False).shape[1:]
        self.n_features_in_ = flat.shape[1]
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(flat)
        return self

    def transform(self, X):
        """Project the images on the fitted components.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images of the size seen by ``fit``.

        Returns
        -------
        features : ndarray of shape (n_images, n_components)
            The component scores.
        """
        check_is_fitted(self, "pca_")
        flat = _flat(X)
        if flat.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has images of {flat.shape[1]} pixels; PixelPCA was fitted on "
                f"{self.n_features_in_}."
            )
        return self.pca_.transform(flat)


def nt_xent_loss(z1, z2, temperature=0.5):
    """SimCLR's normalised temperature-scaled cross entropy (NT-Xent).

    Each of the ``2 n`` projections must pick its partner (the other view of
    the same image) among the other ``2 n - 1`` projections, by cosine
    similarity divided by ``temperature`` (Chen et al., 2020, arXiv
    2002.05709).

    Parameters
    ----------
    z1, z2 : torch.Tensor of shape (n, d)
        Projections of two augmented views; row ``i`` of each comes from image ``i``.
    temperature : float, default=0.5
        Softmax temperature.

    Returns
    -------
    loss : torch.Tensor
        Scalar, the mean over the ``2 n`` anchors.
    """
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, partner)


def contrastive_augmentation(image_size, crop_scale=(0.6, 1.0), degrees=10.0,
                             brightness=0.4, contrast=0.4):
    """Random views of one chest X-ray for contrastive training (transforms v2).

    A random resized crop, a small rotation and random brightness and
    contrast. No horizontal flip: a flipped film is not a plausible CXR.

    Parameters
    ----------
    image_size : tuple of int
        ``(H, W)`` of the output.
    crop_scale : tuple of float, default=(0.6, 1.0)
        Area fraction of the random crop.
    degrees : float, default=10.0
        Largest rotation either way.
    brightness, contrast : float, default=0.4
        Jitter factors drawn from ``[1 - value, 1 + value]``.

    Returns
    -------
    transform : torchvision.transforms.v2.Compose
        Maps a float tensor ``(1, H, W)`` in ``[0, 1]`` to one of the same shape.
    """
    return v2.Compose([
        v2.RandomResizedCrop(tuple(image_size), scale=crop_scale, antialias=True),
        v2.RandomRotation(degrees),
        v2.ColorJitter(brightness=brightness, contrast=contrast),
    ])


def _small_trunk(width, n_blocks):
    """The deterministic trunk of the small ``CXRNet`` (standardisation + features)."""
    from .networks import CXRNet

    net = CXRNet(n_classes=2, backbone="small", width=width, n_blocks=n_blocks)
    trunk, _ = net.mc_split()
    return trunk, width * 2 ** (n_blocks - 1)


class ContrastiveEncoder(TransformerMixin, BaseEstimator):
    """A small CNN trained on the unlabeled pool with SimCLR's contrastive loss.

    The encoder is the trunk of the ``"small"``
    :class:`~skal_cxr.networks.CXRNet` backbone (per-image standardisation,
    ``n_blocks`` convolution blocks, global average pooling), followed during
    training only by a two-layer projection head. Each step draws two views
    of every image of a batch (:func:`contrastive_augmentation`) and
    minimises :func:`nt_xent_loss`. No label is used. ``transform`` returns
    the trunk's features, L2-normalised. The trunk has the layout of
    ``CXRNet.features``, so a classifier can start from it.

    Parameters
    ----------
    width : int, default=16
        Channels of the first block; doubled per block (16 is the width of
        the simulation's classifier, so that it can start from this trunk).
    n_blocks : int, default=3
        Convolution blocks.
    projection_dim : int, default=64
        Output size of the projection head.
    max_epochs : int, default=5
        Passes over the pool (about 20 s each for 4,708 images of 28x28
        pixels on one CPU core).
    batch_size : int, default=256
        Images per step (``2 * batch_size`` views).
    lr : float, default=1e-3
        Adam learning rate.
    temperature : float, default=0.5
        NT-Xent temperature.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the batches and the augmentations.

    Attributes
    ----------
    trunk_ : torch.nn.Sequential
        The trained encoder (``input_norm``, ``features``), on the CPU, in eval mode.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_features_out_ : int
        Features per image.
    image_shape_ : tuple of int
        ``(1, H, W)`` of the training images.

    See Also
    --------
    nt_xent_loss : The training objective.
    PixelPCA : A view in seconds, without training.
    """

    _parameter_constraints = {
        "width": [Integers(1)], "n_blocks": [Integers(1)], "projection_dim": [Integers(1)],
        "max_epochs": [Integers(0)], "batch_size": [Integers(2)],
        "lr": [_POSITIVE], "temperature": [_POSITIVE], "random_state": ["random_state"],
    }

    def __init__(self, width=16, n_blocks=3, projection_dim=64, max_epochs=5,
                 batch_size=256, lr=1e-3, temperature=0.5, random_state=None):
        self.width = width
        self.n_blocks = n_blocks
        self.projection_dim = projection_dim
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the encoder on the images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            The unlabeled pool; at least 2 images.
        y : None
            Ignored (no labels are used).

        Returns
        -------
        self : ContrastiveEncoder
            Fitted.
        """
        check_params(self)
        X = torch.from_numpy(np.ascontiguousarray(check_images(X, allow_dataset=False)))
        if len(X) < 2:
            raise ValueError("ContrastiveEncoder needs at least 2 images to contrast.")
        batch_size = min(check_int(self.batch_size, "batch_size", min_val=2), len(X))
        max_epochs = check_int(self.max_epochs, "max_epochs", min_val=0)
        augment = contrastive_augmentation(X.shape[-2:])
        with torch_rng(self.random_state):
            trunk, n_features = _small_trunk(check_int(self.width, "width"),
                                             check_int(self.n_blocks, "n_blocks"))
            head = nn.Sequential(nn.Linear(n_features, n_features), nn.ReLU(),
                                 nn.Linear(n_features, check_int(self.projection_dim,
                                                                 "projection_dim")))
            model = nn.Sequential(trunk, head).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
            self.loss_curve_ = []
            for _ in range(max_epochs):
                order = torch.randperm(len(X))
                losses = []
                # a last batch of one image has no negatives: it joins the previous one
                n_batches = max(1, len(X) // batch_size)
                for batch in torch.tensor_split(order, n_batches):
                    images = X[batch]
                    views = [torch.stack([augment(x) for x in images]) for _ in range(2)]
                    loss = nt_xent_loss(*(model(v) for v in views), self.temperature)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                self.loss_curve_.append(float(np.mean(losses)))
        self.trunk_ = trunk.eval()
        self.n_features_out_ = n_features
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def transform(self, X):
        """L2-normalised trunk features of the images.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out_), dtype float32
            Unit-length rows.
        """
        check_is_fitted(self, "trunk_")
        X = torch.from_numpy(np.ascontiguousarray(check_images(X, allow_dataset=False)))
        with torch.inference_mode():
            out = [F.normalize(self.trunk_(chunk), dim=1) for chunk in X.split(1024)]
        return torch.cat(out).numpy()


class NetworkEmbedding(TransformerMixin, BaseEstimator):
    """The penultimate features of a fitted network (its ``embed`` method).

    Parameters
    ----------
    estimator : estimator
        A fitted estimator with ``embed(X)``, such as
        :class:`~skal_cxr.MCDropoutCNN`; it is not refitted.

    Attributes
    ----------
    estimator_ : estimator
        ``estimator`` itself, checked at ``fit``.

    See Also
    --------
    skal_cxr.MCDropoutCNN.embed : The features used.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X=None, y=None):
        """Check that the estimator is fitted and has ``embed``.

        Parameters
        ----------
        X : None or array-like
            Ignored.
        y : None
            Ignored.

        Returns
        -------
        self : NetworkEmbedding
            Fitted.
        """
        if not hasattr(self.estimator, "embed"):
            raise TypeError(
                f"NetworkEmbedding needs an estimator with an embed method; "
                f"{type(self.estimator).__name__} has none."
            )
        check_is_fitted(self.estimator)
        self.estimator_ = self.estimator
        return self

    def transform(self, X):
        """The estimator's embeddings of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, ...)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, n_features)
            ``estimator.embed(X)``.
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.embed(X))


def pool_fingerprint(X, transformer=None):
    """A SHA-256 hex digest of a pool's images (and of a transformer's parameters).

    Parameters
    ----------
    X : array-like of shape (n_images, ...)
        The pool; its shape, dtype and bytes are hashed in chunks.
    transformer : estimator or None, default=None
        Its class name and ``get_params(deep=False)`` are hashed too, so two
        views of one pool get different fingerprints.

    Returns
    -------
    fingerprint : str
        64 hexadecimal characters.
    """
    X = np.asarray(X)
    digest = hashlib.sha256(f"{X.shape}|{X.dtype.str}".encode())
    for start in range(0, len(X), 4096):
        digest.update(np.ascontiguousarray(X[start:start + 4096]).tobytes())
    if transformer is not None:
        params = sorted((k, repr(v)) for k, v in transformer.get_params(deep=False).items())
        digest.update(f"{type(transformer).__name__}|{params}".encode())
    return digest.hexdigest()


def cached_embedding(transformer, X, cache_dir, *, name="embedding"):
    """The embedding of a pool, computed once and kept in ``cache_dir``.

    The file ``<cache_dir>/<name>-<fingerprint[:16]>.npy`` holds
    ``clone(transformer).fit_transform(X)`` (float32), beside a ``.json``
    with the full fingerprint and the transformer's parameters. A later call
    with the same pool and parameters loads it without fitting; another pool
    or other parameters get another file. A transformer that is already
    fitted is used as it is (``transform`` only).

    Parameters
    ----------
    transformer : estimator
        :class:`PixelPCA`, :class:`ContrastiveEncoder` or any transformer.
    X : array-like of shape (n_images, ...)
        The pool.
    cache_dir : path-like
        A folder, created if needed (for example the image cache's folder).
    name : str, default="embedding"
        Prefix of the file name.

    Returns
    -------
    features : ndarray of shape (n_images, n_features), dtype float32
        One row per image of ``X``, in order.
    """
    cache_dir = Path(cache_dir)
    fitted = is_fitted(transformer)
    fingerprint = pool_fingerprint(X, transformer)
    if fitted:  # a fitted transformer's weights are not in its parameters
        fingerprint = hashlib.sha256(
            (fingerprint + _fitted_digest(transformer)).encode()).hexdigest()
    path = cache_dir / f"{name}-{fingerprint[:16]}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get(
            "fingerprint") == fingerprint:
        features = np.load(path)
        if len(features) == len(X):
            return features
    model = transformer if fitted else clone(transformer).fit(X)
    features = np.asarray(model.transform(X), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, features)
    os.replace(tmp, path)
    meta.write_text(json.dumps({
        "fingerprint": fingerprint, "transformer": type(transformer).__name__,
        "params": {k: repr(v) for k, v in transformer.get_params(deep=False).items()},
        "shape": list(features.shape),
    }, indent=1))
    return features


def _fitted_digest(transformer):
    """A digest of a fitted transformer's state (weights or fitted arrays)."""
    digest = hashlib.sha256()
    trunk = getattr(transformer, "trunk_", None)
    if trunk is not None:
        for key, value in trunk.state_dict().items():
            digest.update(key.encode() + value.detach().cpu().numpy().tobytes())
    for key in sorted(vars(transformer)):
        value = vars(transformer)[key]
        if key.endswith("_") and isinstance(value, np.ndarray):
            digest.update(key.encode() + value.tobytes())
        pca = value if key == "pca_" else None
        if pca is not None:
            digest.update(pca.components_.tobytes() + pca.mean_.tobytes())
    return digest.hexdigest()

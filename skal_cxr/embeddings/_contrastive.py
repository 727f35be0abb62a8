"""A small CNN trained on the unlabeled pool with SimCLR's contrastive loss."""

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F
from torchvision.transforms import v2
from tqdm.auto import tqdm

from .._random import torch_rng
from .._validation import Integers, check_images, check_int, check_params
from ._pca import _POSITIVE

__all__ = ["ContrastiveEncoder", "nt_xent_loss", "contrastive_augmentation"]


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


def contrastive_augmentation(
    image_size, crop_scale=(0.6, 1.0), degrees=10.0, brightness=0.4, contrast=0.4
):
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
    return v2.Compose(
        [
            v2.RandomResizedCrop(tuple(image_size), scale=crop_scale, antialias=True),
            v2.RandomRotation(degrees),
            v2.ColorJitter(brightness=brightness, contrast=contrast),
        ]
    )


def _small_trunk(width, n_blocks):
    """The deterministic trunk of the small ``CXRNet`` (standardisation + features)."""
    from ..networks import CXRNet

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
    verbose : int, default=0
        ``1`` shows a progress bar of the training steps (tqdm) with the
        running loss; ``0`` prints nothing.

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
        "width": [Integers(1)],
        "n_blocks": [Integers(1)],
        "projection_dim": [Integers(1)],
        "max_epochs": [Integers(0)],
        "batch_size": [Integers(2)],
        "lr": [_POSITIVE],
        "temperature": [_POSITIVE],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        width=16,
        n_blocks=3,
        projection_dim=64,
        max_epochs=5,
        batch_size=256,
        lr=1e-3,
        temperature=0.5,
        random_state=None,
        verbose=0,
    ):
        self.width = width
        self.n_blocks = n_blocks
        self.projection_dim = projection_dim
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.temperature = temperature
        self.random_state = random_state
        self.verbose = verbose

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
            trunk, n_features = _small_trunk(
                check_int(self.width, "width"), check_int(self.n_blocks, "n_blocks")
            )
            head = nn.Sequential(
                nn.Linear(n_features, n_features),
                nn.ReLU(),
                nn.Linear(n_features, check_int(self.projection_dim, "projection_dim")),
            )
            model = nn.Sequential(trunk, head).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
            self.loss_curve_ = []
            # a last batch of one image has no negatives: it joins the previous one
            n_batches = max(1, len(X) // batch_size)
            bar = tqdm(
                total=max_epochs * n_batches,
                desc="ContrastiveEncoder",
                unit="step",
                disable=not self.verbose,
            )
            with bar:
                for _ in range(max_epochs):
                    order = torch.randperm(len(X))
                    losses = []
                    for batch in torch.tensor_split(order, n_batches):
                        images = X[batch]
                        views = [torch.stack([augment(x) for x in images]) for _ in range(2)]
                        loss = nt_xent_loss(*(model(v) for v in views), self.temperature)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        losses.append(loss.item())
                        bar.update()
                        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
                    self.loss_curve_.append(float(np.mean(losses)))
        self.trunk_ = trunk.eval()
        self.n_features_out_ = n_features
        self.image_shape_ = tuple(X.shape[1:])
        return self

    def trunk_state_dict(self):
        """The trained trunk's weights, for ``MCDropoutCNN(encoder_weights=...)``.

        Returns
        -------
        state : dict of str to torch.Tensor
            A copy of ``trunk_.state_dict()``; it loads into the trunk of a
            small :class:`~skal_cxr.networks.CXRNet` of the same width and
            depth (:func:`~skal_cxr.networks.load_trunk_weights`).
        """
        check_is_fitted(self, "trunk_")
        return {k: v.detach().clone() for k, v in self.trunk_.state_dict().items()}

    def feature_module(self):
        """The torch module that :meth:`transform` applies, for fine-tuning.

        Returns
        -------
        module : torch.nn.Sequential
            ``trunk_`` followed by L2 normalisation: maps a float tensor of
            shape ``(n, 1, H, W)`` (images as :func:`check_images` gives them)
            to ``(n, n_features_out_)``. It is ``trunk_`` itself, not a copy:
            copy it before training it.
        """
        check_is_fitted(self, "trunk_")
        return nn.Sequential(self.trunk_, _L2Normalize())

    def transform(self, X):
        """L2-normalised trunk features of the images.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W)
            Images.

        Returns
        -------
        features : ndarray of shape (n_images, ``n_features_out_``), dtype float32
            Unit-length rows.
        """
        check_is_fitted(self, "trunk_")
        X = torch.from_numpy(np.ascontiguousarray(check_images(X, allow_dataset=False)))
        self.trunk_.eval()
        with torch.inference_mode():
            out = [F.normalize(self.trunk_(chunk), dim=1) for chunk in X.split(1024)]
        return torch.cat(out).numpy()


class _L2Normalize(nn.Module):
    """Rows scaled to unit Euclidean length (``F.normalize``)."""

    def forward(self, x):
        return F.normalize(x, dim=1)

"""Views of an image pool without labels, for label-free and low-budget acquisition.

Three scikit-learn transformers map images of shape ``(n_images, H, W)`` or
``(n_images, 1, H, W)`` to feature vectors ``(n_images, n_features)``:

* :class:`PixelPCA`: principal components of the pixels (seconds on a CPU);
* :class:`ContrastiveEncoder`: a small CNN (the ``"small"`` backbone of
  :class:`~skal_cxr.networks.CXRNet`) trained on the unlabeled pool itself
  with SimCLR's contrastive objective (:func:`nt_xent_loss`), a few CPU
  minutes at 28-64 pixels;
* :class:`NetworkEmbedding`: the penultimate features of a fitted
  :class:`~skal_cxr.MCDropoutCNN` (its ``embed``);
* :class:`PretrainedEncoder`: a frozen torchvision ResNet-18/50 or
  DenseNet-121 from a weights file checked by its SHA-256
  (:func:`download_weights` fetches one, with a network);
* :class:`XRVEncoder`: a chest X-ray DenseNet of torchxrayvision (the
  optional ``xrv`` extra).

:func:`cached_embedding` computes a view once per pool and keeps it on disk
(an ``.npy`` file named by a fingerprint of the pool and of the transformer);
:func:`cached_fit` does the same for the fitted encoder itself, and
:func:`memoized_transform` (or :class:`MemoizedView`) keeps a fitted
encoder's features in memory, image by image.
"""

from ._cache import cached_embedding, cached_fit, load_fitted, pool_fingerprint, store_fitted
from ._contrastive import ContrastiveEncoder, contrastive_augmentation, nt_xent_loss
from ._memo import MemoizedView, memoized_transform, remember_features
from ._network import NetworkEmbedding
from ._pca import PixelPCA, is_fitted
from ._pretrained import (
    ChecksumError,
    PretrainedEncoder,
    XRVEncoder,
    download_weights,
    file_sha256,
    weights_url,
)

__all__ = [
    "PixelPCA",
    "ContrastiveEncoder",
    "NetworkEmbedding",
    "PretrainedEncoder",
    "XRVEncoder",
    "ChecksumError",
    "file_sha256",
    "download_weights",
    "weights_url",
    "MemoizedView",
    "memoized_transform",
    "remember_features",
    "cached_fit",
    "load_fitted",
    "store_fitted",
    "nt_xent_loss",
    "contrastive_augmentation",
    "pool_fingerprint",
    "cached_embedding",
    "is_fitted",
]

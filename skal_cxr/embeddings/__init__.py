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

from ._cache import cached_embedding, pool_fingerprint
from ._contrastive import ContrastiveEncoder, contrastive_augmentation, nt_xent_loss
from ._network import NetworkEmbedding
from ._pca import PixelPCA, is_fitted

__all__ = [
    "PixelPCA",
    "ContrastiveEncoder",
    "NetworkEmbedding",
    "nt_xent_loss",
    "contrastive_augmentation",
    "pool_fingerprint",
    "cached_embedding",
    "is_fitted",
]

"""The torch ``Dataset`` over lazily read images (see ``_lazy``).

Apart from :mod:`skal_cxr._lazy` so that :class:`~skal_cxr._lazy.ImageRows`
imports without torch.
"""

import numpy as np
import torch
from torch.utils.data import Dataset

from ._lazy import ImageRows
from ._validation import check_images

__all__ = ["LazyImageDataset"]


class LazyImageDataset(Dataset):
    """``(image, label)`` pairs read from an array batch by batch.

    Each batch is read with one indexing call (``__getitems__``, used by
    :class:`torch.utils.data.DataLoader`) and converted by
    :func:`~skal_cxr._validation.check_images` (``uint8`` scaled to
    ``[0, 1]``, NaN rejected), so only one batch is ever in memory as
    ``float32``.

    Parameters
    ----------
    images : ImageRows or ndarray of shape (N, H, W) or (N, 1, H, W)
    y : ndarray of shape (N,) of int or None, default=None
        Label codes; ``None`` gives placeholder labels 0.
    """

    def __init__(self, images, y=None):
        self.images = images if isinstance(images, ImageRows) else ImageRows(images)
        self.y = None if y is None else np.asarray(y, dtype=np.int64)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        indices = np.asarray(indices, dtype=np.intp)
        X = torch.from_numpy(check_images(self.images[indices]))
        y = np.zeros(len(indices), dtype=np.int64) if self.y is None else self.y[indices]
        return list(zip(X, torch.from_numpy(y)))

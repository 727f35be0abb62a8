"""The package's one image resizer, shared by the datasets and ``CXRPreprocessor``.

Images are resized with PyTorch's antialiased bilinear interpolation
(``torch.nn.functional.interpolate(mode="bilinear", antialias=True,
align_corners=False)``), in float32:

- antialiasing: when shrinking, the triangle filter widens with the scale
  factor (the filter of Pillow's ``Image.resize(..., BILINEAR)``, which
  torch's ``antialias=True`` follows), so a 2048-pixel radiograph resized to
  64 pixels averages its neighbourhoods instead of sampling four pixels;
- dtype: the images are float32 in the whole package, and torch resizes a
  float32 batch ``(n_images, 1, H, W)`` at once, where Pillow takes one
  2-D image at a time in its ``"F"`` mode;
- one implementation: Pillow and torch compute the same filter with
  different floating-point rounding (differences of about 1e-6, enough to
  move a ``uint8`` cache value by one level), so the images a network is
  trained on (read by :mod:`skal_cxr.datasets`) and the images
  :class:`~skal_cxr.CXRPreprocessor` prepares go through this one function
  and get identical pixels.
"""

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["resize_images"]


def resize_images(X, size):
    """Images resized to ``size`` with antialiased bilinear interpolation.

    Parameters
    ----------
    X : ndarray of shape (H, W) or (n_images, n_channels, H, W)
        Images; converted to float32.
    size : tuple of (int, int)
        Output ``(height, width)``.

    Returns
    -------
    resized : ndarray of shape (height, width) or (n_images, n_channels, height, width)
        float32, the shape of ``X`` with the last two axes resized.
    """
    X = np.asarray(X, dtype=np.float32)
    batch = X if X.ndim == 4 else X[np.newaxis, np.newaxis]
    with torch.inference_mode():
        out = F.interpolate(
            torch.from_numpy(np.ascontiguousarray(batch)),
            size=tuple(size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        ).numpy()
    return out if X.ndim == 4 else out[0, 0]

"""Image preprocessing as a scikit-learn transformer."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ._resize import resize_images
from ._validation import Integers, StrOptions, check_image_size, check_images, check_params

__all__ = ["CXRPreprocessor"]


class CXRPreprocessor(TransformerMixin, BaseEstimator):
    """Resize chest X-rays and scale their intensities, image by image.

    A stateless transformer: ``fit`` only checks the parameters, so it is
    safe to use before an estimator inside a :class:`~sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    size : int, tuple of (int, int) or None, default=None
        Output height and width; ``None`` keeps the input size. Resizing is
        bilinear with antialiasing, by the resizer that
        :func:`~skal_cxr.datasets.load_image_folder` also uses, so both give
        the same pixels. With a size, ``X`` may also be a list of
        images of different sizes.
    scaling : {"minmax", "standardize"} or None, default="minmax"
        ``"minmax"`` maps each image to ``[0, 1]`` (a constant image
        becomes 0), ``"standardize"`` to zero mean and unit variance per
        image, ``None`` leaves intensities as they are (``uint8`` and
        ``uint16`` input is always scaled to ``[0, 1]`` first).

    Examples
    --------
    >>> import numpy as np
    >>> from skal_cxr import CXRPreprocessor
    >>> X = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    >>> CXRPreprocessor(size=4).fit_transform(X).shape
    (2, 1, 4, 4)
    """

    _parameter_constraints = {
        "size": [Integers(1), "array-like", None],  # a pair: see check_image_size
        "scaling": [StrOptions({"minmax", "standardize"}), None],
    }

    def __init__(self, size=None, scaling="minmax"):
        self.size = size
        self.scaling = scaling

    def fit(self, X, y=None):
        """Check parameters and input; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or list
            Images.
        y : None
            Ignored.

        Returns
        -------
        self : CXRPreprocessor
        """
        self._as_images(X, self._check_params())
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: transform works without fit
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def _check_params(self):
        """Check the parameters; return ``size`` as a pair (or ``None``)."""
        check_params(self)
        return check_image_size(self.size, "size")

    @staticmethod
    def _as_images(X, size):
        """Checked ``(N, 1, H, W)`` images; a list of different sizes is resized one by one."""
        if size is not None and isinstance(X, (list, tuple)) and len({np.shape(x) for x in X}) > 1:
            return np.concatenate(
                [
                    resize_images(image, size) if image.shape[-2:] != size else image
                    for image in (
                        check_images(np.asarray(x)[np.newaxis], allow_dataset=False) for x in X
                    )
                ]
            )
        return check_images(X, allow_dataset=False)

    def transform(self, X):
        """Resize and scale ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, H, W) or (n_images, 1, H, W), or list
            A list may hold images of different sizes when ``size`` is set.

        Returns
        -------
        Xt : ndarray of shape (n_images, 1, height, width), dtype float32
        """
        size = self._check_params()
        X = self._as_images(X, size)
        if size is not None and size != X.shape[-2:]:
            X = resize_images(X, size)
        if self.scaling == "minmax":
            lo = X.min(axis=(1, 2, 3), keepdims=True)
            span = X.max(axis=(1, 2, 3), keepdims=True) - lo
            X = np.divide(X - lo, span, out=np.zeros_like(X), where=span > 0)
        elif self.scaling == "standardize":
            mean = X.mean(axis=(1, 2, 3), keepdims=True)
            std = X.std(axis=(1, 2, 3), keepdims=True)
            X = np.divide(X - mean, std, out=np.zeros_like(X), where=std > 0)
        return X.astype(np.float32, copy=False)

"""PCA of the pixels, and whether a transformer is fitted."""

import numbers

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._validation import Integers, Interval, check_images, check_int, check_params

__all__ = ["PixelPCA", "is_fitted"]

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

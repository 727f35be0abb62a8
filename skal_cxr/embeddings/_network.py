"""The penultimate features of a fitted network as a transformer."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

__all__ = ["NetworkEmbedding"]


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
